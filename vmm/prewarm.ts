/**
 * Importing this module starts one vCPU worker thread at once (see `worker_pool.ts`); the
 * CLI imports it first so the worker boots while the rest of the program loads.
 *
 * @module
 */

import { prewarmVcpuWorkers } from "./worker_pool.ts";

prewarmVcpuWorkers(1);
