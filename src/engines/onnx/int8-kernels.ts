import { readFileSync } from 'node:fs';

/**
 * Whether int8 models may run on ONNX Runtime's fast u8s8 kernels instead of the exact u8u8 ones
 * (`session.x64quantprecision`): only on an x64 CPU known to have VNNI.
 *
 * On x64 without VNNI, MLAS's fast u8s8 kernels multiply with `vpmaddubsw`, which saturates pairs
 * of products at 16 bits and shifts the logits (MobileNetV2-int8 then ranks car.jpg "convertible"
 * over "sports car"). VNNI's `vpdpbusd` accumulates in 32 bits, so the fast kernels are exact
 * there: the same logits, bit for bit, at about half the CPU (MobileNetV2-int8, 7.7 → 4.0 ms).
 * Anywhere else (no VNNI, flags unknown, another architecture) the setting stays as it was.
 */
export function fastInt8KernelsAreExact(arch: string = process.arch, cpuFlags: () => string | undefined = linuxCpuFlags): boolean {
  if (arch !== 'x64') return false;
  const flags = cpuFlags();
  return flags !== undefined && hasVnni(flags);
}

/** VNNI in a /proc/cpuinfo `flags` line: AVX512-VNNI or AVX-VNNI. */
export function hasVnni(flags: string): boolean {
  const set = new Set(flags.trim().split(/\s+/));
  return set.has('avx512_vnni') || set.has('avx_vnni');
}

/** The first CPU's feature flags from /proc/cpuinfo, or undefined where there is none. */
export function linuxCpuFlags(): string | undefined {
  try {
    const line = readFileSync('/proc/cpuinfo', 'latin1').split('\n').find((l) => /^flags\s*:/.test(l));
    return line?.slice(line.indexOf(':') + 1);
  } catch {
    return undefined;
  }
}
