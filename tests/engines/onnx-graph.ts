/**
 * A minimal ONNX ModelProto encoder for tests: just the protobuf fields needed to write small
 * graphs by hand (field numbers from onnx/onnx.proto). Lets a test build a model whose outputs it
 * knows exactly, without any model file or converter.
 */

class Writer {
  private readonly parts: number[] = [];

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      this.parts.push(byte);
    } while (v !== 0n);
    return this;
  }

  private key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    return this.key(field, 0).varint(value);
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2).varint(data.length);
    for (const b of data) this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export const DataType = { FLOAT: 1, UINT8: 2, INT64: 7 } as const;

export interface TensorInit {
  name?: string;
  dims: number[];
  type: 'float32' | 'uint8' | 'int64';
  values: number[];
}

function tensorProto(t: TensorInit): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  const raw =
    t.type === 'float32'
      ? new Uint8Array(Float32Array.from(t.values).buffer)
      : t.type === 'int64'
        ? new Uint8Array(BigInt64Array.from(t.values.map(BigInt)).buffer)
        : Uint8Array.from(t.values);
  w.int(2, t.type === 'float32' ? DataType.FLOAT : t.type === 'int64' ? DataType.INT64 : DataType.UINT8);
  if (t.name) w.string(8, t.name);
  w.bytes(9, raw);
  return w;
}

export type Attribute = { name: string; int: number } | { name: string; string: string } | { name: string; tensor: TensorInit };

function attributeProto(a: Attribute): Writer {
  const w = new Writer().string(1, a.name);
  if ('int' in a) w.int(3, a.int).int(20, 2);
  else if ('string' in a) w.string(4, a.string).int(20, 3);
  else w.message(5, tensorProto(a.tensor)).int(20, 4);
  return w;
}

export interface NodeInit {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Attribute[];
}

function nodeProto(n: NodeInit, index: number): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.op.toLowerCase()}_${index}`);
  w.string(4, n.op);
  for (const a of n.attributes ?? []) w.message(5, attributeProto(a));
  return w;
}

export interface ValueInit {
  name: string;
  type: 'float32' | 'uint8' | 'int64';
  /** A number is a fixed dimension, a string a free (named) one. */
  dims: (number | string)[];
}

function valueInfo(v: ValueInit): Writer {
  const shape = new Writer();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
  const elemType = v.type === 'float32' ? DataType.FLOAT : v.type === 'int64' ? DataType.INT64 : DataType.UINT8;
  const tensorType = new Writer().int(1, elemType).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

export interface GraphInit {
  nodes: NodeInit[];
  inputs: ValueInit[];
  outputs: ValueInit[];
  opset?: number;
}

/** The serialized ModelProto (IR version 7, default opset 13). */
export function encodeModel(g: GraphInit): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, i) => graph.message(1, nodeProto(n, i)));
  graph.string(2, 'test-graph');
  for (const i of g.inputs) graph.message(11, valueInfo(i));
  for (const o of g.outputs) graph.message(12, valueInfo(o));
  return new Writer()
    .int(1, 7)
    .string(2, 'cvserve-tests')
    .message(7, graph)
    .message(8, new Writer().string(1, '').int(2, g.opset ?? 13))
    .finish();
}

/** A Constant node producing `output` with the given values. */
export function constant(output: string, t: Omit<TensorInit, 'name'>): NodeInit {
  return { op: 'Constant', inputs: [], outputs: [output], attributes: [{ name: 'value', tensor: { ...t, name: output } }] };
}
