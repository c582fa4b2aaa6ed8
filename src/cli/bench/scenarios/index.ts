// Every scenario `pd bench` knows, in the order `pd bench all` runs them.
import type { Scenario } from '../types.js';
import { redis } from './redis.js';

export const SCENARIOS: readonly Scenario[] = [redis];

export function findScenario(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id);
}
