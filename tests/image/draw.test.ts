import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { openImage } from '../../src/image/decode.js';
import { boxesOverlaySvg, drawBoxes, escapeXml, strokeWidthFor } from '../../src/image/draw.js';
import type { DrawBox, ImageInput, RawImage } from '../../src/image/types.js';
import { imageBytes, reference } from '../resources/haar-reference.js';

const faces: DrawBox[] = reference.images['test_face_processing.jpg'].faces.map((box) => ({ box }));

async function decoded(bytes: Buffer): Promise<RawImage & { format: string }> {
  const meta = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as 3, format: meta.format };
}

async function inputOf(bytes: Buffer): Promise<ImageInput> {
  return openImage(bytes, { maxPixels: 40_000_000 });
}

/** Which pixels differ between two RGB images of the same size. */
function changedMask(a: RawImage, b: RawImage): Uint8Array {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  const mask = new Uint8Array(a.width * a.height);
  for (let i = 0; i < mask.length; i++) {
    for (let c = 0; c < 3; c++) if (a.data[i * a.channels + c] !== b.data[i * b.channels + c]) mask[i] = 1;
  }
  return mask;
}

describe('drawBoxes', () => {
  test('boxes drawn as PNG: same size, pixels change along each box border and nowhere else', async () => {
    const bytes = imageBytes('test_face_processing.jpg');
    const input = await inputOf(bytes);
    const out = await decoded(await drawBoxes(input, faces, 'png'));
    assert.equal(out.format, 'png');
    assert.equal(out.channels, 3, 'no alpha channel added to an opaque input');
    const original = await input.rgb();
    const mask = changedMask(out, original);
    const sw = strokeWidthFor(input.width, input.height);

    // The stroke lies inside each box: a band of sw pixels along the border.
    const onBorder = (x: number, y: number) =>
      faces.some(({ box: [x1, y1, x2, y2] }) => {
        const inBox = x >= x1 && x < x2 && y >= y1 && y < y2;
        const inInner = x >= x1 + sw && x < x2 - sw && y >= y1 + sw && y < y2 - sw;
        return inBox && !inInner;
      });
    const nearBorder = (x: number, y: number) => [-1, 0, 1].some((dx) => [-1, 0, 1].some((dy) => onBorder(x + dx, y + dy)));
    let changedOutside = 0;
    for (let y = 0; y < out.height; y++) {
      for (let x = 0; x < out.width; x++) if (mask[y * out.width + x] && !nearBorder(x, y)) changedOutside++;
    }
    assert.equal(changedOutside, 0, 'pixels changed away from every box border');

    for (const { box: [x1, y1, x2, y2] } of faces) {
      let border = 0;
      let changed = 0;
      for (let y = y1; y < y2; y++) {
        for (let x = x1; x < x2; x++) {
          if (x >= x1 + sw && x < x2 - sw && y >= y1 + sw && y < y2 - sw) continue;
          border++;
          changed += mask[y * out.width + x];
        }
      }
      assert.ok(changed / border > 0.9, `only ${changed}/${border} border pixels of ${[x1, y1, x2, y2]} changed`);
    }
  });

  test('no boxes: the image comes back unchanged', async () => {
    const input = await inputOf(imageBytes('test_face_processing.jpg'));
    const out = await decoded(await drawBoxes(input, [], 'png'));
    assert.equal(changedMask(out, await input.rgb()).reduce((a, b) => a + b, 0), 0);
  });

  test('raw pixels draw exactly like the encoded input', async () => {
    const input = await inputOf(imageBytes('test_face_processing.jpg'));
    const fromInput = await decoded(await drawBoxes(input, faces, 'png'));
    const fromRaw = await decoded(await drawBoxes(await input.rgb(), faces, 'png'));
    assert.deepEqual(fromRaw.data, fromInput.data);
  });

  test('JPEG and WebP outputs', async () => {
    const input = await inputOf(imageBytes('cat_small.jpg'));
    const boxes = reference.images['cat_small.jpg'].catfaces.map((box) => ({ box }));
    for (const format of ['jpeg', 'webp'] as const) {
      const out = await decoded(await drawBoxes(input, boxes, format));
      assert.equal(out.format, format);
      assert.equal(out.width, 1000);
      assert.equal(out.height, 1334);
      // The border is bright green on a cat: far from the input even after lossy encoding.
      const original = await input.rgb();
      const [x1, y1] = boxes[0].box;
      const at = (img: RawImage, x: number, y: number) => img.data[(y * img.width + x) * img.channels + 1];
      assert.ok(at(out, x1 + 2, y1 + 40) - at(original, x1 + 2, y1 + 40) > 60, `${format}: the green border is missing`);
    }
  });

  test('EXIF orientation: boxes land on the upright image', async () => {
    // A 200x100 crop stored sideways (orientation 6 = rotate 90° clockwise to display): upright it is 100x200.
    const sideways = await sharp(imageBytes('test_face_processing.jpg'))
      .extract({ left: 0, top: 0, width: 200, height: 100 })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const input = await inputOf(sideways);
    assert.deepEqual([input.width, input.height], [100, 200]);
    const out = await decoded(await drawBoxes(input, [{ box: [10, 120, 60, 190] }], 'png'));
    assert.deepEqual([out.width, out.height], [100, 200]);
    const mask = changedMask(out, await input.rgb());
    let minX = Infinity, minY = Infinity, maxX = -1, maxY = -1;
    mask.forEach((m, i) => {
      if (!m) return;
      const x = i % out.width, y = Math.floor(i / out.width);
      minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x); maxY = Math.max(maxY, y);
    });
    assert.deepEqual([minX, minY, maxX + 1, maxY + 1], [10, 120, 60, 190]);
  });

  test('labels: escaped for XML, drawn on a tag above the box', async () => {
    const label = 'cat <0.9> & "friends"';
    const svg = boxesOverlaySvg(640, 482, [{ box: [300, 200, 400, 300], label }]);
    assert.ok(svg.includes(escapeXml(label)));
    assert.ok(!svg.includes(label));
    assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');

    const input = await inputOf(imageBytes('test_face_processing.jpg'));
    const out = await decoded(await drawBoxes(input, [{ box: [300, 200, 400, 300], label }], 'png'));
    const mask = changedMask(out, await input.rgb());
    let aboveBox = 0;
    for (let y = 170; y < 200; y++) for (let x = 300; x < 400; x++) aboveBox += mask[y * out.width + x];
    assert.ok(aboveBox > 1000, `the label tag is missing (${aboveBox} pixels changed above the box)`);
  });

  test('boxes partly outside the image are clipped to it, not refused: outlined along the image edge', async () => {
    const input = await inputOf(imageBytes('test_face_processing.jpg'));
    const out = await decoded(await drawBoxes(input, [{ box: [-50, -50, 100, 100] }, { box: [600, 400, 900, 900], label: 'edge' }], 'png'));
    assert.deepEqual([out.width, out.height], [640, 482]);
    const mask = changedMask(out, await input.rgb());
    const sw = strokeWidthFor(640, 482);
    for (const [x1, y1, x2, y2] of [[0, 0, 100, 100], [600, 400, 640, 482]] as const) {
      let border = 0;
      let changed = 0;
      let inside = 0;
      for (let y = y1; y < y2; y++) {
        for (let x = x1; x < x2; x++) {
          const inner = x >= x1 + sw && x < x2 - sw && y >= y1 + sw && y < y2 - sw;
          if (!inner) {
            border++;
            changed += mask[y * 640 + x]!;
          } else if (x > x1 + sw && x < x2 - sw - 1 && y > y1 + sw && y < y2 - sw - 1) inside += mask[y * 640 + x]!;
        }
      }
      assert.ok(changed / border > 0.9, `only ${changed}/${border} border pixels of the clipped box ${[x1, y1, x2, y2]} changed`);
      assert.equal(inside, 0, `pixels changed inside the clipped box ${[x1, y1, x2, y2]}`);
    }
    // Away from both boxes and the label tag above the second: untouched.
    let away = 0;
    for (let y = 0; y < 482; y++) for (let x = 0; x < 640; x++) if (((x < 560 && y >= 110) || (y < 340 && x >= 110)) && mask[y * 640 + x]) away++;
    assert.equal(away, 0, 'pixels changed away from the boxes');
  });

  test('stroke width grows with the image', () => {
    assert.equal(strokeWidthFor(640, 482), 2);
    assert.equal(strokeWidthFor(2372, 1334), 7);
    assert.equal(strokeWidthFor(10, 10), 2);
  });
});
