/** One bench row: a route under a load shape. */
export interface Scenario {
  /** Row label, e.g. "detect face c8". */
  id: string;
  route: string;
  method: 'GET' | 'POST';
  /** Image sent as multipart field "image" (POST only). */
  image?: string;
  connections: number;
  /** Multiplies the run's duration: a 2 s request needs more than 5 s to give a throughput. */
  durationFactor: number;
  /** Which kernel (bench/kernels.ts) bounds this row, for the "% of limit" column. */
  kernel?: string;
  /** The pool whose workers run that kernel, when the route alone does not say (default: by route). */
  pool?: 'onnx' | 'opencv';
  /** The body as a client shapes it: `frigate` = Frigate's DeepStack detector (image + empty api_key). Default: field "image" only. */
  form?: 'frigate';
}
