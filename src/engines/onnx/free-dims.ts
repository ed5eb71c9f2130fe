/**
 * Edits of an ONNX model's graph as it is loaded, in the serialized ModelProto, without any
 * protobuf library: only the fields on the path to what changes are decoded and re-encoded; every
 * other byte is copied as it is. freeModelDims rewrites the declared input and output dimensions
 * from fixed numbers to named (free) ones; feedFrom feeds the graph past its first layers. Both
 * drop graph.value_info (the exporter's shape hints for intermediate tensors, which would pin them
 * to the exported size): ONNX Runtime infers those shapes itself. A fully convolutional model then
 * runs at other input sizes; whether its answers stay right there is for a test against the
 * model's own size to show (see the manifest's `sizes`).
 */

// Field numbers from onnx/onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const TENSOR_NAME = 8;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const TYPE_ELEM_TYPE = 1;
const DIM_VALUE = 1;
/** TensorProto.DataType FLOAT. */
const FLOAT = 1;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_PARAM = 2;

interface Field {
  field: number;
  wire: number;
  /** The whole encoded field (key and value), for copying unchanged. */
  raw: Uint8Array;
  /** The payload of a length-delimited field. */
  body?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

function parse(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, afterKey] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    pos = afterKey;
    let body: Uint8Array | undefined;
    if (wire === 0) pos = readVarint(buf, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, afterLen] = readVarint(buf, pos);
      const end = afterLen + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      body = buf.subarray(afterLen, end);
      pos = end;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (pos > buf.length) throw new Error('truncated field');
    fields.push({ field, wire, raw: buf.subarray(start, pos), body });
  }
  return fields;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function lengthDelimited(field: number, body: Uint8Array): Uint8Array {
  const head = [...varint((field << 3) | 2), ...varint(body.length)];
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Rewrites the length-delimited fields numbered `field` with `edit`; everything else is copied. */
function rewrite(buf: Uint8Array, field: number, edit: (body: Uint8Array) => Uint8Array | null): Uint8Array {
  return concat(
    parse(buf).flatMap((f) => {
      if (f.field !== field || !f.body) return [f.raw];
      const next = edit(f.body);
      return next ? [lengthDelimited(field, next)] : [];
    }),
  );
}

function valueName(valueInfo: Uint8Array): string {
  const name = parse(valueInfo).find((f) => f.field === VALUE_INFO_NAME && f.body);
  return name ? new TextDecoder().decode(name.body) : '';
}

/** One ValueInfoProto with the dims at `indices` (all when 'all') replaced by named dims. */
function freeValueDims(valueInfo: Uint8Array, indices: readonly number[] | 'all', prefix: string): Uint8Array {
  return rewrite(valueInfo, VALUE_INFO_TYPE, (type) =>
    rewrite(type, TYPE_TENSOR, (tensor) =>
      rewrite(tensor, TENSOR_SHAPE, (shape) => {
        let index = 0;
        return rewrite(shape, SHAPE_DIM, (dim) => {
          const i = index++;
          if (indices !== 'all' && !indices.includes(i)) return dim;
          return concat([...parse(dim).filter((f) => f.field > DIM_PARAM).map((f) => f.raw), lengthDelimited(DIM_PARAM, new TextEncoder().encode(`${prefix}_${i}`))]);
        });
      }),
    ),
  );
}

/** Input name → indices of the dims to free (e.g. [2, 3] for NCHW height and width). */
export type FreeDims = Record<string, readonly number[]>;

/**
 * The model with the named input dims freed, every output dim freed (they follow the input's
 * size, e.g. a detector's box count, and ONNX Runtime does not need them) and the exporter's
 * intermediate shape hints dropped. Throws when an input named is not declared by the graph.
 */
export function freeModelDims(model: Uint8Array, inputs: FreeDims): Uint8Array {
  let seen = 0;
  const out = rewrite(model, MODEL_GRAPH, (graph) => {
    const fields = parse(graph);
    const parts = fields.flatMap((f) => {
      if (f.field === GRAPH_VALUE_INFO) return [];
      if ((f.field === GRAPH_INPUT || f.field === GRAPH_OUTPUT) && f.body) {
        const name = valueName(f.body);
        const indices = f.field === GRAPH_OUTPUT ? 'all' : inputs[name];
        if (!indices) return [f.raw];
        if (f.field === GRAPH_INPUT) seen++;
        return [lengthDelimited(f.field, freeValueDims(f.body, indices, name.replace(/\W/g, '_')))];
      }
      return [f.raw];
    });
    return concat(parts);
  });
  const wanted = Object.keys(inputs).length;
  if (seen !== wanted) throw new Error(`the model declares ${seen} of the ${wanted} inputs named to free`);
  return out;
}

const decodeText = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : '');
const varintField = (field: number, value: number) => Uint8Array.from([...varint(field << 3), ...varint(value)]);

/** A float tensor ValueInfoProto: `dims` numbers are fixed, strings named (free). */
function floatValueInfo(name: string, dims: ReadonlyArray<number | string>): Uint8Array {
  const shape = concat(
    dims.map((d) => lengthDelimited(SHAPE_DIM, typeof d === 'number' ? varintField(DIM_VALUE, d) : lengthDelimited(DIM_PARAM, new TextEncoder().encode(d)))),
  );
  const tensor = concat([varintField(TYPE_ELEM_TYPE, FLOAT), lengthDelimited(TENSOR_SHAPE, shape)]);
  return concat([lengthDelimited(VALUE_INFO_NAME, new TextEncoder().encode(name)), lengthDelimited(VALUE_INFO_TYPE, lengthDelimited(TYPE_TENSOR, tensor))]);
}

/**
 * The model fed at `tensor` instead of at its graph input: the nodes `tensor` is computed from
 * (and only those) are dropped, and `tensor` becomes the one float input, with `dims`. For a graph
 * whose first layers only rearrange the input (YOLOX's Focus: four strided Slices and a Concat),
 * the caller then packs that arrangement itself. Throws when `tensor` is not a node output, when
 * a dropped node's output is used elsewhere, or when the graph has other inputs.
 */
export function feedFrom(model: Uint8Array, tensor: string, dims: ReadonlyArray<number | string>): Uint8Array {
  return rewrite(model, MODEL_GRAPH, (graph) => {
    const fields = parse(graph);
    const nodes = fields.filter((f) => f.field === GRAPH_NODE && f.body).map((f) => {
      const parts = parse(f.body!);
      return { field: f, inputs: parts.filter((p) => p.field === NODE_INPUT).map((p) => decodeText(p.body)), outputs: parts.filter((p) => p.field === NODE_OUTPUT).map((p) => decodeText(p.body)) };
    });
    const producer = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    if (!producer.has(tensor)) throw new Error(`no node computes ${tensor}`);
    const dropped = new Set<(typeof nodes)[number]>();
    const visit = (name: string) => {
      const node = producer.get(name);
      if (!node || dropped.has(node)) return;
      dropped.add(node);
      node.inputs.forEach(visit);
    };
    visit(tensor);
    const inputs = fields.filter((f) => f.field === GRAPH_INPUT && f.body).map((f) => valueName(f.body!));
    const initializers = new Set(fields.filter((f) => f.field === GRAPH_INITIALIZER && f.body).map((f) => decodeText(parse(f.body!).find((p) => p.field === TENSOR_NAME)?.body)));
    const fed = inputs.filter((i) => !initializers.has(i));
    if (fed.length !== 1) throw new Error('only a graph with one input can be fed elsewhere');
    // What the kept nodes may no longer read: the dropped nodes' outputs, and the replaced input.
    const gone = new Set([...[...dropped].flatMap((n) => n.outputs), fed[0]!]);
    for (const n of nodes) {
      if (dropped.has(n)) continue;
      const used = n.inputs.find((i) => gone.has(i) && i !== tensor);
      if (used) throw new Error(`${used} is used past ${tensor}: the graph cannot be fed there`);
    }
    let replaced = false;
    return concat(
      fields.flatMap((f) => {
        if (f.field === GRAPH_NODE && [...dropped].some((n) => n.field === f)) return [];
        if (f.field === GRAPH_VALUE_INFO) return [];
        if (f.field === GRAPH_INPUT && f.body && !initializers.has(valueName(f.body))) {
          if (replaced) return [];
          replaced = true;
          return [lengthDelimited(GRAPH_INPUT, floatValueInfo(tensor, dims))];
        }
        return [f.raw];
      }),
    );
  });
}
