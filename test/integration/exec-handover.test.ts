// Checks: an upgraded connection inherited across execve keeps working in the new image, on its ring: the client (test/progs/exec_cont.c) writes 64 KiB, executes itself without reading their echo, and the new image reads the owed echo and 4 MiB more, every byte verified (none lost, none twice, in order); `pd status` shows the connection still on the ring with ring bytes grown in both directions after the exec. The same with fork or vfork + exec in the child (the parent closes its copy, and that close must not end the child's connection). On plain kernel TCP the program does the same, as the reference.
import path from 'node:path';
import { expect, it } from 'vitest';
import { startServer } from '../helpers/echo.js';
import { connOf } from '../helpers/ev.js';
import { PROGS_BIN } from '../helpers/paths.js';
import { pdStatus } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { spawnProc, sleep } from '../helpers/proc.js';

const EXEC_CONT = path.join(PROGS_BIN, 'exec_cont');
const pd = setupPdTest([EXEC_CONT]);

const OWED = 64 * 1024;
const AFTER = 64 * 64 * 1024;

const HOW = { exec: [], 'fork, then exec in the child': ['--fork'], 'vfork, then exec in the child': ['--vfork'] };

for (const [how, flag] of Object.entries(HOW)) {
  for (const pdrun of [true, false]) {
    const name = `${how}${pdrun ? '' : ' (plain kernel TCP, the reference)'}`;
    it(`${name}: the connection goes on, every byte verified${pdrun ? ', on the ring' : ''}`, async () => {
      const opts = pdrun ? { pdrun: true, env: pd().env } : {};
      const server = await startServer(['--max-conns', '1'], opts);
      const args = ['127.0.0.1', String(server.port), ...flag];
      const proc = spawnProc(EXEC_CONT, args, { ...opts, stdinPipe: true, name: `exec_cont ${name}` });
      const local = (await proc.waitStdout(/^connected (\S+)\n/, 20_000))[1]!;
      let pings = 0;
      const ping = async (): Promise<void> => {
        proc.writeStdin('ping\n');
        await proc.waitStdout(new RegExp(`^pong ${++pings}\\n`, 'm'), 10_000);
      };
      let before = undefined as ReturnType<typeof connOf>;
      if (pdrun) {
        for (let i = 0; i < 100; i++) {
          await ping();
          before = connOf(pdStatus(pd().sock), local);
          if (before?.transport === 'ring' && before.switched[0] && before.switched[1]) break;
          await sleep(20);
        }
        expect(before?.switched, `not upgraded both ways: ${JSON.stringify(before)}`).toEqual([true, true]);
        await ping(); // one more round on the ring both ways
        before = connOf(pdStatus(pd().sock), local);
      } else {
        await ping();
      }
      proc.writeStdin('exec\n');
      const m = await proc.waitStdout(/^continued (\S+) (\d+)\n/m, 30_000);
      expect(m[1], 'the new image holds the same connection').toBe(local);
      expect(Number(m[2])).toBe(OWED + AFTER);
      if (pdrun) {
        const after = connOf(pdStatus(pd().sock), local);
        console.log(`${name}: before the exec ${JSON.stringify(before?.ringBytes)}, after ${JSON.stringify(after?.ringBytes)} (${after?.transport})`);
        expect(after?.transport, `the connection left the ring: ${JSON.stringify(after)}`).toBe('ring');
        // the 64 KiB + 4 MiB went by the ring each way after the exec
        for (const d of [0, 1]) expect(after!.ringBytes[d]! - before!.ringBytes[d]!).toBeGreaterThanOrEqual(OWED + AFTER);
      }
      proc.writeStdin('quit\n');
      await proc.waitOk(10_000);
    });
  }
}
