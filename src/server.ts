import { runServer } from './run.js';

runServer().catch((err) => {
  console.error(err);
  process.exit(1);
});
