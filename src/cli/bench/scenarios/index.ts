// Every scenario `pd bench` knows, in the order `pd bench all` runs them.
import type { Scenario } from '../types.js';
import { allreduce } from './allreduce.js';
import { connectRate } from './connect-rate.js';
import { containers } from './containers.js';
import { latency } from './latency.js';
import { memcached } from './memcached.js';
import { nginx } from './nginx.js';
import { redis } from './redis.js';
import { throughput } from './throughput.js';

export const SCENARIOS: readonly Scenario[] = [redis, latency, throughput, connectRate, nginx, memcached, allreduce, containers];

export function findScenario(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id);
}
