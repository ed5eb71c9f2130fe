// A plugin for tests that start a real server process (CVSERVE_PLUGINS_DIR=tests/helpers/plugins):
// POST /gate (any image) waits until the process gets SIGUSR2, so a test holds requests in flight
// for exactly as long as it wants. Each request that reaches the gate writes `[gate] entered <n>`
// to stderr; SIGUSR2 releases every request waiting then, and the route answers {"passed": n}.
export default ({ z }) => {
  const waiting = new Set();
  let entered = 0;
  const releaseAll = () => {
    for (const release of waiting) release();
    waiting.clear();
  };
  process.on('SIGUSR2', releaseAll);
  return {
    name: 'gate',
    summary: 'Waits until the process gets SIGUSR2 (tests only)',
    params: z.strictObject({}),
    output: { kind: 'json', schema: z.object({ passed: z.number() }) },
    async run() {
      const n = ++entered;
      await new Promise((resolve) => {
        waiting.add(resolve);
        process.stderr.write(`[gate] entered ${n}\n`);
      });
      return { kind: 'json', body: { passed: n } };
    },
    async close() {
      releaseAll();
    },
  };
};
