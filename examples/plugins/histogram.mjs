// cvserve plugin: /histogram — the per-channel histogram of an image, as a PNG chart rendered in
// memory (an SVG rasterised by sharp; no temporary files) or as JSON counts.
//
//   CVSERVE_PLUGINS_DIR=examples/plugins npm start
//   curl -F image=@photo.jpg http://127.0.0.1:8080/histogram -o histogram.png
//   curl -F image=@photo.jpg -H 'Accept: application/json' http://127.0.0.1:8080/histogram
//   curl -F image=@photo.jpg -F format=json -F bins=16 http://127.0.0.1:8080/histogram
//
// A plugin's default export receives a kit from cvserve: its zod (`z`), the parameter builders
// (`param`), `sharp`, `AppError` and a few image helpers. It returns a resource: a name (the route),
// a summary, its parameters as a zod object, what it answers, and run().

const CHANNELS = [
  { name: 'red', color: '#e5383b' },
  { name: 'green', color: '#2b9348' },
  { name: 'blue', color: '#1d4ed8' },
];

/** Counts per channel of interleaved RGB bytes, `bins` equal bins over 0..255 (value v falls in bin ⌊v·bins/256⌋). */
function histogram(data, channels, bins) {
  // One pass counting all 256 levels (a plain index, nothing to compute per pixel), then folded into bins.
  const levels = CHANNELS.map(() => new Uint32Array(256));
  const [r, g, b] = levels;
  for (let i = 0; i < data.length; i += channels) {
    r[data[i]]++;
    g[data[i + 1]]++;
    b[data[i + 2]]++;
  }
  return levels.map((level) => {
    const counts = new Array(bins).fill(0);
    for (let v = 0; v < 256; v++) counts[(v * bins) >> 8] += level[v];
    return counts;
  });
}

/** An SVG chart: each channel's histogram as a translucent area over a light grid, 0 and 255 marked. */
function chartSvg(counts, width, height) {
  const margin = { top: 24, right: 12, bottom: 26, left: 12 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const bins = counts[0].length;
  // Scale to the tallest inner bin: clipped pixels (pure black or white) pile up in the end bins and
  // would flatten everything else. Taller bars are cut at the top.
  const inner = bins > 2 ? counts.flatMap((c) => c.slice(1, -1)) : counts.flat();
  const max = Math.max(1, ...inner);
  const x = (i) => margin.left + (i / bins) * plotW;
  const y = (c) => margin.top + plotH - Math.min(1, c / max) * plotH;
  const areas = counts.map((channel, k) => {
    let d = `M${x(0)},${y(0)}`;
    channel.forEach((c, i) => {
      d += ` L${x(i).toFixed(1)},${y(c).toFixed(1)} L${x(i + 1).toFixed(1)},${y(c).toFixed(1)}`;
    });
    d += ` L${x(bins)},${y(0)} Z`;
    const { color } = CHANNELS[k];
    return `<path d="${d}" fill="${color}" fill-opacity="0.35" stroke="${color}" stroke-width="1.2"/>`;
  });
  const grid = [0.25, 0.5, 0.75].map((f) => `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${margin.top + plotH * f}" y2="${margin.top + plotH * f}" stroke="#e5e7eb"/>`);
  const labelY = height - 8;
  const legend = CHANNELS.map(({ name, color }, k) => {
    const lx = width - margin.right - (CHANNELS.length - k) * 54;
    return `<rect x="${lx}" y="6" width="10" height="10" fill="${color}" fill-opacity="0.6"/><text x="${lx + 14}" y="15" font-family="DejaVu Sans, Arial, sans-serif" font-size="11" fill="#374151">${name}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="100%" height="100%" fill="#ffffff"/>
${grid.join('\n')}
${areas.join('\n')}
<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="#6b7280"/>
<text x="${margin.left}" y="${labelY}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11" fill="#374151">0</text>
<text x="${margin.left + plotW / 2}" y="${labelY}" text-anchor="middle" font-family="DejaVu Sans, Arial, sans-serif" font-size="11" fill="#374151">128</text>
<text x="${margin.left + plotW}" y="${labelY}" text-anchor="end" font-family="DejaVu Sans, Arial, sans-serif" font-size="11" fill="#374151">255</text>
${legend.join('\n')}
</svg>`;
}

export default function histogramPlugin({ z, param, sharp }) {
  const params = z.strictObject({
    bins: param.int({ min: 1, max: 256, default: 256, description: 'Number of equal-width bins over 0..255.' }),
    format: param.enum(['png', 'json'], {
      description: 'png: a chart; json: the counts. Default: json when the client asks for JSON (Accept: application/json, or a JSON request), else png.',
    }),
    width: param.int({ min: 64, max: 4096, default: 512, description: 'Chart width in pixels.' }),
    height: param.int({ min: 64, max: 4096, default: 256, description: 'Chart height in pixels.' }),
  });

  const counts = z.array(z.number().int().min(0));
  const output = {
    kind: 'json',
    schema: z.object({
      width: z.number().int().describe('Image width in pixels (after EXIF orientation).'),
      height: z.number().int(),
      bins: z.number().int(),
      channels: z.array(z.object({ name: z.enum(['red', 'green', 'blue']), counts: counts.describe('Pixels per bin, darkest first.') })),
    }),
    rendersImage: true,
  };

  return {
    name: 'histogram',
    summary: 'Per-channel histogram (chart or counts)',
    description:
      'Counts the red, green and blue values of every pixel. Answers a PNG chart of the three histograms, ' +
      'or {"width", "height", "bins", "channels": [{"name", "counts"}]} when the client asks for JSON or format=json.',
    params,
    output,

    async run(input, p, ctx) {
      const rgb = await input.rgb();
      const bins = p.bins;
      const channels = histogram(rgb.data, rgb.channels, bins);
      const asJson = p.format === 'json' || (p.format === undefined && ctx.prefers === 'json');
      if (asJson) {
        return {
          kind: 'json',
          body: { width: rgb.width, height: rgb.height, bins, channels: CHANNELS.map((c, k) => ({ name: c.name, counts: channels[k] })) },
        };
      }
      const svg = Buffer.from(chartSvg(channels, p.width, p.height));
      const { data, info } = await sharp(svg, { limitInputPixels: p.width * p.height })
        .flatten({ background: '#ffffff' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { kind: 'image', image: { data, width: info.width, height: info.height, channels: info.channels }, format: 'png' };
    },
  };
}
