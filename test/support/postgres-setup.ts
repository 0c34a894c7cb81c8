import type { TestProject } from 'vitest/node';
import { startCluster } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The test cluster's port on 127.0.0.1. */
    pgPort: number;
  }
}

/** vitest globalSetup of the postgres project: one throwaway cluster for the whole run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startCluster();
  project.provide('pgPort', cluster.port);
  return () => cluster.stop();
}
