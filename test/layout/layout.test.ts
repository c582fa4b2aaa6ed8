// Checks that the C header and the TS layout agree: the committed header is
// what layout.ts generates, and a C compiler sees the same offsets and sizes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateFactsProgram, generateHeader, HEADER_PATH, layoutFacts } from '../../src/datapath/gen-header.js';

const dir = mkdtempSync(join(tmpdir(), 'pd-layout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('shared-memory layout', () => {
  it('committed preload/pd_layout.h is what layout.ts generates', () => {
    expect(readFileSync(HEADER_PATH, 'utf8')).toBe(generateHeader());
  });

  it('the C compiler sees every offset, size and constant that TS uses', () => {
    const src = join(dir, 'facts.c');
    writeFileSync(src, generateFactsProgram());
    const bin = join(dir, 'facts');
    execFileSync('cc', ['-std=c11', '-Wall', '-Werror', '-I', join(HEADER_PATH, '..'), '-o', bin, src]);
    const c = execFileSync(bin, { encoding: 'utf8' }).trim().split('\n');
    expect(c).toEqual(layoutFacts());
  });
});
