#!/usr/bin/env node
// pd: the controller daemon and its tools.
//   pd controller   run the controller in the foreground
//   pd status       what the controller sees (--json for the document)
//   pd stop         SIGTERM the controller and wait for it to go
//   pd options      the PD_* options table in markdown
//   pd bench        A/B of real applications (src/cli/bench/)
import { unlinkSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { fetchStatus } from '../control/client.js';
import { Controller } from '../control/controller.js';
import { PdError, errorMessage } from '../control/errors.js';
import { addOptionFlags, renderOptionsMarkdown, resolveOptions } from '../control/options.js';
import { pidFilePath } from '../control/paths.js';
import { readPidFile } from '../control/pidfile.js';
import { formatStatus } from './format-status.js';
import { registerBench } from './bench/command.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runController(flags: Record<string, unknown>): Promise<number> {
  const cfg = resolveOptions(['socket', 'idleExit', 'ringSize', 'slotsPerArena', 'arenaQuotaMb', 'hugepages', 'crossNetns', 'socketGroup', 'log'], flags);
  const ctl = new Controller(cfg);
  const bail = (what: string, e: unknown) => {
    ctl.log.error(`${what}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    ctl.cleanupFiles();
    process.exit(1);
  };
  process.on('uncaughtException', (e) => bail('uncaught exception', e));
  process.on('unhandledRejection', (e) => bail('unhandled rejection', e));
  process.on('exit', () => ctl.cleanupFiles());
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void ctl.stop(sig));
  process.on('SIGPIPE', () => {});
  await ctl.start();
  await ctl.done;
  return 0;
}

async function status(flags: Record<string, unknown>): Promise<number> {
  const { socket } = resolveOptions(['socket'], flags);
  const doc = await fetchStatus(socket);
  process.stdout.write(flags.json ? `${JSON.stringify(doc, null, 2)}\n` : formatStatus(doc));
  return 0;
}

async function stop(flags: Record<string, unknown>): Promise<number> {
  const { socket } = resolveOptions(['socket'], flags);
  const pidPath = pidFilePath(socket);
  const st = readPidFile(pidPath);
  if (!st.running) {
    if (st.stale) {
      try {
        unlinkSync(pidPath);
      } catch {
        /* raced with a starting controller: leave it */
      }
    }
    throw new PdError('PD_E_NO_CONTROLLER', `no controller running at ${socket}`);
  }
  try {
    process.kill(st.pid, 'SIGTERM');
  } catch (e) {
    throw new PdError('PD_E_NO_CONTROLLER', `cannot signal controller pid ${st.pid}: ${errorMessage(e)}`);
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    await sleep(25);
    if (!readPidFile(pidPath).running) return 0;
  }
  throw new PdError('PD_E_STOP_TIMEOUT', `controller pid ${st.pid} did not exit within 5 s: kill it with \`kill -9 ${st.pid}\``);
}

function main(): void {
  const program = new Command('pd')
    .description('pipedevice controller and tools')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const run = (name: string, fn: (flags: Record<string, unknown>) => Promise<number>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      try {
        process.exitCode = await fn(cmd.opts());
      } catch (e) {
        process.stderr.write(`pd ${name}: ${errorMessage(e)}\n`);
        process.exitCode = e instanceof PdError && e.code === 'PD_E_OPTION' ? 2 : 1;
      }
      if (name === 'controller') process.exit();
    };

  addOptionFlags(
    program.command('controller').description('run the controller in the foreground (logs to stderr)'),
    'controller',
  ).action(run('controller', runController));
  addOptionFlags(
    program.command('status').description('show sessions, connections and arenas').option('--json', 'print the status document as JSON'),
    'client',
  ).action(run('status', status));
  addOptionFlags(program.command('stop').description('stop the running controller'), 'client').action(run('stop', stop));
  program.command('options').description('print the PD_* options table (markdown)').action(() => {
    process.stdout.write(renderOptionsMarkdown());
  });
  registerBench(program);

  program.parseAsync(process.argv).catch((e: unknown) => {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
    process.stderr.write(`pd: ${errorMessage(e)}\n`);
    process.exit(1);
  });
}

main();

