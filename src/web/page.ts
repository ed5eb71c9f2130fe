/**
 * The static text of the playground and the docs page. Kept in TypeScript so the build puts it in
 * dist/ with everything else. No inline scripts or style attributes: the pages work under a strict
 * Content-Security-Policy (script-src 'self').
 */

export function playgroundHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cvserve playground</title>
<link rel="stylesheet" href="playground/playground.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
<script type="module" src="playground/web/playground.js"></script>
</head>
<body>
<header>
  <h1>cvserve</h1>
  <nav><a href="docs/">API docs</a> <a href="openapi.json">openapi.json</a></nav>
  <label class="key">API key <input id="api-key" type="password" autocomplete="off" placeholder="only if the service needs one"></label>
</header>
<main>
  <aside>
    <h2 id="routes-title">Capabilities</h2>
    <ul id="routes" aria-labelledby="routes-title"><li class="muted">Loading…</li></ul>
    <h2 id="panels-title">People</h2>
    <ul id="panels" aria-labelledby="panels-title"><li><button type="button" data-panel="faces">Faces<small>register, gallery, recognize</small></button></li></ul>
  </aside>
  <section id="work" hidden>
    <h2 id="route-title"></h2>
    <p id="route-description" class="muted"></p>
    <div id="drop" tabindex="0" aria-label="Image: drop, paste or choose a file">
      <p>Drop an image here, paste one, or <label class="link">choose a file<input id="file" type="file" accept="image/*"></label></p>
      <p id="samples" hidden>or try a sample: </p>
      <p class="or"><label for="url">or an image URL</label> <input id="url" type="url" placeholder="https://…/photo.jpg"></p>
      <p id="image-name" class="muted">No image yet.</p>
    </div>
    <form id="params" autocomplete="off"></form>
    <div class="actions">
      <button id="run" type="button">Run</button>
      <button id="curl" type="button" class="secondary">Copy as curl</button>
      <span id="busy" role="status" hidden><span class="spinner" aria-hidden="true"></span> <span id="busy-text">Running…</span> <progress id="progress" max="1" hidden></progress></span>
      <span id="timing" class="muted"></span>
    </div>
    <pre id="curl-text" hidden></pre>
    <div id="error" role="alert" hidden></div>
    <div id="result"></div>
  </section>
  <section id="faces" hidden aria-labelledby="faces-title">
    <h2 id="faces-title">Faces</h2>
    <p class="muted">Register photos of a person under a name, see who is in the gallery, and recognize the people in a photo, with the DeepStack face API (<code>/v1/vision/face/register</code>, <code>list</code>, <code>delete</code>) and <code>/facerecognition</code>. The gallery keeps a face descriptor per photo (128 numbers), never the photo.</p>
    <div class="faces-top">
      <form id="face-register" class="card" autocomplete="off">
        <h3>Register a photo</h3>
        <label for="face-userid">Name</label>
        <input id="face-userid" name="userid" type="text" maxlength="256" placeholder="e.g. alice">
        <p class="pick"><label class="link">choose a photo<input id="face-register-file" type="file" accept="image/*"></label> <span class="face-samples" data-for="register"></span></p>
        <p id="face-register-name" class="muted">No photo yet.</p>
        <button id="face-register-run" type="submit">Register</button>
        <p id="face-register-result" role="status"></p>
      </form>
      <div id="face-gallery" class="card">
        <h3>Gallery <button id="face-refresh" type="button" class="secondary">Refresh</button></h3>
        <ul id="face-users" aria-label="Registered people"><li class="muted">Loading…</li></ul>
      </div>
    </div>
    <form id="face-recognize" class="card" autocomplete="off">
      <h3>Recognize</h3>
      <p class="pick"><label class="link">choose a photo<input id="face-recognize-file" type="file" accept="image/*"></label> <span class="face-samples" data-for="recognize"></span></p>
      <p id="face-recognize-name" class="muted">No photo yet.</p>
      <p class="row"><label for="face-min-confidence">minConfidence</label> <input id="face-min-confidence" type="number" min="0" max="1" step="any" value="0.67"> <button id="face-recognize-run" type="submit">Recognize</button> <span id="face-timing" class="muted"></span></p>
    </form>
    <div id="face-error" role="alert" hidden></div>
    <div id="face-result"></div>
  </section>
</main>
</body>
</html>
`;
}

export function playgroundCss(): string {
  return `:root { --fg: #1d2330; --muted: #667085; --line: #d5d9e2; --accent: #2159d6; --bad: #b42318; --bg: #f7f8fa; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1.5rem; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.2rem; margin: 0; }
header nav a { margin-right: 1rem; color: var(--accent); }
header .key { margin-left: auto; font-size: .85rem; color: var(--muted); }
header .key input { font: inherit; padding: .2rem .4rem; width: 14rem; max-width: 100%; box-sizing: border-box; }
main { display: grid; grid-template-columns: 15rem minmax(0, 1fr); gap: 1.2rem; padding: 1.2rem; align-items: start; }
aside { min-width: 0; }
aside h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0 0 .5rem; }
#routes, #panels { list-style: none; margin: 0; padding: 0; }
#panels-title { margin-top: 1rem; }
#routes button, #panels button { display: block; width: 100%; text-align: left; padding: .5rem .7rem; margin-bottom: .3rem; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; font: inherit; color: inherit; }
#routes button[aria-current="true"], #panels button[aria-current="true"] { border-color: var(--accent); box-shadow: inset 3px 0 0 var(--accent); }
#routes small, #panels small { display: block; color: var(--muted); }
#work, #faces { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; min-width: 0; }
#work h2, #faces h2 { margin: 0; font-size: 1.2rem; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
#drop { border: 2px dashed var(--line); border-radius: 8px; padding: .6rem 1rem; margin: .8rem 0; }
#drop.over { border-color: var(--accent); background: #eef3ff; }
#drop p { margin: .3rem 0; }
#drop input[type=file] { display: none; }
#drop .or { display: flex; flex-wrap: wrap; align-items: baseline; gap: .3rem .5rem; }
#url { flex: 1 1 12rem; min-width: 0; max-width: 28rem; box-sizing: border-box; font: inherit; padding: .2rem .4rem; }
#image-name { overflow-wrap: anywhere; }
#samples button { font: inherit; font-size: .9rem; padding: .15rem .6rem; margin: .15rem .3rem .15rem 0; border: 1px solid var(--line); border-radius: 999px; background: #fff; color: var(--accent); cursor: pointer; }
#samples button:hover { border-color: var(--accent); }
.link { color: var(--accent); text-decoration: underline; cursor: pointer; }
#params { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(15rem, 100%), 1fr)); gap: .6rem 1rem; margin: .8rem 0; }
#params label { display: block; font-weight: 600; font-size: .9rem; }
#params .hint { display: block; font-size: .78rem; color: var(--muted); margin-top: .2rem; }
#params input[type=checkbox] { margin: .4rem 0; }
#params input:not([type=checkbox]), #params select { width: 100%; box-sizing: border-box; padding: .3rem; font: inherit; }
.actions { display: flex; flex-wrap: wrap; align-items: center; gap: .6rem; }
button { font: inherit; }
.actions button { padding: .45rem 1.1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
.actions button.secondary { background: #fff; color: var(--accent); }
.actions button:disabled { opacity: .6; cursor: wait; }
#busy { display: inline-flex; align-items: center; gap: .4rem; color: var(--muted); }
#busy[hidden] { display: none; }
.spinner { width: 1rem; height: 1rem; border: 2px solid var(--line); border-top-color: var(--accent); border-radius: 50%; animation: spin .8s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation-duration: 3s; } }
#progress { width: 8rem; }
#curl-text { white-space: pre-wrap; word-break: break-all; background: #0f172a; color: #e2e8f0; padding: .6rem .8rem; border-radius: 6px; font-size: .82rem; }
#error, #face-error { margin: .8rem 0; padding: .6rem .8rem; border: 1px solid var(--bad); color: var(--bad); background: #fef3f2; border-radius: 6px; overflow-wrap: anywhere; }
#result { margin-top: 1rem; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: .8rem; }
figure { margin: 0; min-width: 0; }
figcaption { font-size: .85rem; color: var(--muted); margin-bottom: .25rem; overflow-wrap: anywhere; }
.stage { position: relative; display: inline-block; max-width: 100%; line-height: 0; }
.stage img { max-width: 100%; max-height: 70vh; display: block; }
/* Both images at the column's width, so input and output line up even when the output is 3× larger. */
.pair img { width: 100%; height: auto; max-height: 70vh; object-fit: contain; object-position: left top; display: block; }
.stage svg { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible; pointer-events: none; }
.stage svg rect.box { fill: none; stroke-width: 2.5px; vector-effect: non-scaling-stroke; }
.stage svg text { font-family: system-ui, sans-serif; font-weight: 600; fill: #000; }
.download-row { margin: .5rem 0; }
.download { display: inline-block; padding: .3rem .9rem; border: 1px solid var(--accent); border-radius: 6px; color: var(--accent); text-decoration: none; }
.download:hover { background: #eef3ff; }
.zoom { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: .8rem; margin-top: .6rem; }
.zoom figure div { height: 220px; border: 1px solid var(--line); border-radius: 6px; background-repeat: no-repeat; background-color: #eee; }
.zoom div.pixelated { image-rendering: pixelated; }
.classified { display: grid; grid-template-columns: minmax(0, 20rem) minmax(0, 1fr); gap: 1.2rem; align-items: start; }
.classified img { max-height: 50vh; }
.bars { list-style: none; padding: 0; margin: 0; max-width: 44rem; }
.bars li { display: grid; grid-template-columns: minmax(0, 12rem) minmax(3rem, 1fr) 4.5rem; align-items: center; gap: .6rem; margin: .35rem 0; }
.bars .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bars .bar { height: 1.1rem; background: #e4e7ec; border-radius: 4px; overflow: hidden; }
.bars .bar span { display: block; height: 100%; background: var(--accent); }
.bars .value { text-align: right; font-variant-numeric: tabular-nums; }
.summary { font-weight: 600; margin: .4rem 0; }
#faces code { font-size: .85em; overflow-wrap: anywhere; }
.faces-top { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: .8rem; margin-top: .8rem; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: .7rem .9rem; min-width: 0; }
#face-recognize { margin-top: .8rem; }
.card h3 { display: flex; align-items: center; justify-content: space-between; gap: .5rem; font-size: 1rem; margin: 0 0 .5rem; }
.card label[for] { display: block; font-weight: 600; font-size: .9rem; }
.card input[type=text] { width: 100%; max-width: 20rem; box-sizing: border-box; padding: .3rem; font: inherit; }
.card input[type=number] { width: 6rem; padding: .3rem; font: inherit; }
.card input[type=file] { display: none; }
.card .pick { margin: .5rem 0 .2rem; }
.card .row { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; margin: .4rem 0 0; }
.card .row label[for] { display: inline; }
.card p { margin: .3rem 0; overflow-wrap: anywhere; }
.card button { padding: .4rem 1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
.card button.secondary, .face-samples button, #face-users button { background: #fff; color: var(--accent); }
.card button:disabled { opacity: .6; cursor: wait; }
.face-samples button { font-size: .85rem; padding: .1rem .55rem; border-radius: 999px; border-color: var(--line); margin: .1rem .2rem .1rem 0; }
#face-users { list-style: none; margin: 0; padding: 0; }
#face-users li { display: flex; align-items: center; gap: .5rem; padding: .3rem 0; border-bottom: 1px solid var(--line); }
#face-users li:last-child { border-bottom: 0; }
#face-users .name { font-weight: 600; overflow-wrap: anywhere; min-width: 0; }
#face-users .photos { color: var(--muted); font-size: .85rem; margin-right: auto; white-space: nowrap; }
#face-users button { font-size: .85rem; padding: .15rem .6rem; border-color: var(--bad); color: var(--bad); }
#face-register-result.ok { color: #067647; }
details { margin-top: .8rem; }
details pre { max-height: 20rem; overflow: auto; background: var(--bg); padding: .5rem; font-size: .8rem; }
@media (max-width: 800px) {
  main { grid-template-columns: minmax(0, 1fr); gap: .8rem; padding: .8rem; }
  .pair, .zoom, .classified, .faces-top { grid-template-columns: minmax(0, 1fr); }
  /* The capabilities as one row that scrolls sideways by itself, so the form starts on the first screen. */
  aside h2 { display: none; }
  aside { display: flex; gap: .4rem; min-width: 0; }
  #routes { display: flex; gap: .4rem; overflow-x: auto; padding-bottom: .3rem; flex: 1 1 auto; min-width: 0; }
  #panels { flex: none; }
  #routes li { flex: none; }
  #routes button, #panels button { width: auto; margin: 0; white-space: nowrap; }
  #routes button[aria-current="true"], #panels button[aria-current="true"] { box-shadow: inset 0 -3px 0 var(--accent); }
  #routes small, #panels small { display: none; }
  #work, #faces { padding: .8rem; }
  header { padding: .5rem .8rem; }
  header .key { margin-left: 0; flex: 1 1 100%; display: flex; align-items: baseline; gap: .5rem; }
  header .key input { flex: 1; width: auto; min-width: 0; }
  .bars li { grid-template-columns: minmax(0, 8rem) minmax(2rem, 1fr) 3.8rem; gap: .4rem; }
}
`;
}

/** Swagger UI plus a bar with the way back to the playground. */
export function docsHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cvserve API docs</title>
<link rel="stylesheet" href="./swagger-ui.css">
<link rel="stylesheet" href="./index.css">
<link rel="stylesheet" href="./cvserve.css">
<link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32">
</head>
<body>
<nav class="cvserve-bar"><a href="../">← Playground</a> <a href="../openapi.json">openapi.json</a></nav>
<div id="swagger-ui"></div>
<script src="./swagger-ui-bundle.js"></script>
<script src="./swagger-initializer.js"></script>
</body>
</html>
`;
}

/** Swagger UI pointed at this service's document; validatorUrl null keeps it from calling out to swagger.io. */
export function docsInitializerJs(): string {
  return `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: new URL('../openapi.json', window.location.href).href,
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;
}

export function docsCss(): string {
  return `.cvserve-bar { display: flex; gap: 1.2rem; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid #d5d9e2; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.cvserve-bar a { color: #2159d6; }
`;
}
