// Checks the PD_* options table: flag over environment over default, strict
// parsing with the source named, and the markdown `pd options` prints (and
// README.md carries).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPTIONS, renderOptionsMarkdown, resolveOptions } from '../../src/control/options.js';
import { PdError } from '../../src/control/errors.js';
import { PD_JS, ROOT } from './fake-shim.js';

describe('options table', () => {
  it('flag wins over environment, environment over default', () => {
    expect(resolveOptions(['ringSize'], {}, {}).ringSize).toBe(262144);
    expect(resolveOptions(['ringSize'], {}, { PD_RING_SIZE: '1M' }).ringSize).toBe(1 << 20);
    expect(resolveOptions(['ringSize'], { ringSize: '4096' }, { PD_RING_SIZE: '1M' }).ringSize).toBe(4096);
    expect(resolveOptions(['idleExit'], {}, { PD_IDLE_EXIT: '0' }).idleExit).toBe(0);
    expect(resolveOptions(['socket'], {}, { XDG_RUNTIME_DIR: '/run/user/5' }).socket).toMatch(/pipedevice\/pd\.sock$/);
  });

  it('rejects bad values and names where they came from', () => {
    const bad = (f: () => unknown, re: RegExp) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(PdError);
        expect((e as PdError).code).toBe('PD_E_OPTION');
        expect((e as Error).message).toMatch(re);
        return;
      }
      throw new Error('no error');
    };
    bad(() => resolveOptions(['ringSize'], {}, { PD_RING_SIZE: '3000' }), /^PD_RING_SIZE=3000: expected a power of two/);
    bad(() => resolveOptions(['ringSize'], { ringSize: '32M' }, {}), /^--ring-size=32M/);
    bad(() => resolveOptions(['idleExit'], {}, { PD_IDLE_EXIT: '-1' }), /PD_IDLE_EXIT/);
    bad(() => resolveOptions(['log'], {}, { PD_LOG: 'loud' }), /expected one of quiet, info, debug/);
    bad(() => resolveOptions(['slotsPerArena'], {}, { PD_SLOTS_PER_ARENA: '1.5' }), /PD_SLOTS_PER_ARENA/);
  });

  it('every option has a PD_ name and help; the markdown lists them all', () => {
    const md = renderOptionsMarkdown();
    for (const s of Object.values(OPTIONS)) {
      expect(s.env).toMatch(/^PD_[A-Z_]+$/);
      expect(s.help.length).toBeGreaterThan(10);
      expect(md).toContain(`\`${s.env}\``);
    }
    const cli = spawnSync(process.execPath, [PD_JS, 'options'], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toBe(md);
    // the README carries the same table
    expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), 'README.md: paste `pd options` into its Configuration section')
      .toContain(md.trimEnd());
  });

  it('the controller help shows each flag with its variable', () => {
    const r = spawnSync(process.execPath, [PD_JS, 'controller', '--help'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/--ring-size <bytes>[\s\S]*PD_RING_SIZE/);
    expect(r.stdout).toMatch(/--idle-exit <seconds>[\s\S]*PD_IDLE_EXIT/);
  });
});
