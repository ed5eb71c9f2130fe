import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { fastInt8KernelsAreExact, hasVnni, linuxCpuFlags } from '../../src/engines/onnx/int8-kernels.js';
import { sessionOptions } from '../../src/engines/onnx/session-options.js';
import { MODELS_DIR } from './onnx-fixtures.js';

const AVX2_ONLY = 'fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2';
const AVX512_VNNI = `${AVX2_ONLY} avx512f avx512bw avx512vl avx512_vnni avx512_bf16`;
const AVX_VNNI = `${AVX2_ONLY} avx_vnni`;

describe('int8 kernels: fast only where they are exact', () => {
  test('VNNI is read from the flags line, whole words only', () => {
    assert.equal(hasVnni(AVX2_ONLY), false);
    assert.equal(hasVnni(`${AVX2_ONLY} avx512f avx512bw`), false);
    assert.equal(hasVnni(AVX512_VNNI), true);
    assert.equal(hasVnni(AVX_VNNI), true);
    assert.equal(hasVnni('avx512_vnnix'), false);
  });

  test('fast kernels only on x64 with VNNI; an unknown CPU or another architecture keeps the exact ones', () => {
    assert.equal(fastInt8KernelsAreExact('x64', () => AVX512_VNNI), true);
    assert.equal(fastInt8KernelsAreExact('x64', () => AVX_VNNI), true);
    assert.equal(fastInt8KernelsAreExact('x64', () => AVX2_ONLY), false);
    assert.equal(fastInt8KernelsAreExact('x64', () => undefined), false);
    assert.equal(fastInt8KernelsAreExact('arm64', () => AVX512_VNNI), false);
  });

  test('the session asks for the exact kernels unless told they are not needed', () => {
    const data = { intraOpNumThreads: 1, memoryArena: true };
    const exact = sessionOptions(data, true).extra as { session: Record<string, unknown> };
    const fast = sessionOptions(data, false).extra as { session: Record<string, unknown> };
    assert.equal(exact.session.x64quantprecision, '1');
    assert.equal('x64quantprecision' in fast.session, false);
    assert.deepEqual(fast.session.intra_op, { allow_spinning: '0' });
  });

  const vnni = process.arch === 'x64' && hasVnni(linuxCpuFlags() ?? '');
  test('on this VNNI machine, MobileNetV2-int8 gives the same logits bit for bit either way', { skip: vnni ? false : 'no VNNI here' }, async () => {
    const model = path.join(MODELS_DIR, 'mobilenetv2-12-int8.onnx');
    const data = { intraOpNumThreads: 1, memoryArena: true };
    const [exact, fast] = await Promise.all([ort.InferenceSession.create(model, sessionOptions(data, true)), ort.InferenceSession.create(model, sessionOptions(data, false))]);
    try {
      for (let seed = 1; seed <= 12; seed++) {
        const input = new Float32Array(3 * 224 * 224);
        // Values across and beyond ImageNet's normalized range, so the activations reach saturation.
        for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 0.0007 * seed + seed) * (1 + seed * 0.25);
        const feed = (s: ort.InferenceSession) => s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', input, [1, 3, 224, 224]) });
        const [a, b] = await Promise.all([feed(exact), feed(fast)]);
        const la = a[exact.outputNames[0]!]!.data as Float32Array;
        const lb = b[fast.outputNames[0]!]!.data as Float32Array;
        let differing = 0;
        for (let i = 0; i < la.length; i++) if (la[i] !== lb[i]) differing++;
        assert.equal(differing, 0, `seed ${seed}: logits differ`);
      }
    } finally {
      await Promise.all([exact.release(), fast.release()]);
    }
  });
});
