#!/usr/bin/env node
// pdrun [options] [--] CMD ARGS...: runs CMD with the shim preloaded and a
// controller at PD_SOCKET (started on demand). Every fallback is one line on
// stderr and the program runs anyway, on kernel TCP. pdrun never writes to
// stdout: that belongs to the program.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { isatty } from 'node:tty';
import { Command, CommanderError } from 'commander';
import { inForegroundOf } from '../datapath/libc.js';
import { PdError, errorMessage } from '../control/errors.js';
import { printWarning } from '../control/log.js';
import { addOptionFlags, optionKeys, resolveOptions } from '../control/options.js';
import { inspectElf } from './elf.js';
import { ensureController } from './ensure-controller.js';
import { resolveCommand } from './which.js';

const RELAYED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
/** Signals a terminal sends to its whole foreground process group, child included. */
const TTY_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];

const stderr = (s: string) => process.stderr.write(s);

function parseArgs(argv: string[]): { opts: Record<string, unknown>; command: string[] } {
  const program = new Command('pdrun')
    .usage('[options] [--] CMD ARGS...')
    .description('Run CMD with pipedevice: intra-host TCP connections move to shared-memory rings.')
    .enablePositionalOptions()
    .passThroughOptions()
    .argument('[command...]', 'the program and its arguments')
    .helpOption('-h, --help', 'show this help')
    .configureOutput({ writeOut: stderr, writeErr: stderr })
    .exitOverride();
  addOptionFlags(program, 'pdrun');
  try {
    program.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.help' ? 0 : 2);
    }
    throw e;
  }
  const command = program.args;
  if (command.length === 0) {
    stderr(`pdrun: no command given\n${program.helpInformation()}`);
    process.exit(2);
  }
  return { opts: program.opts(), command };
}

/** Appends lib to LD_PRELOAD (space-separated), unless it is already there. */
function withPreload(env: NodeJS.ProcessEnv, lib: string): string {
  const existing = (env.LD_PRELOAD ?? '').trim();
  if (existing.split(/[\s:]+/).includes(lib)) return existing;
  return existing ? `${existing} ${lib}` : lib;
}

async function main(): Promise<number> {
  const { opts, command } = parseArgs(process.argv);
  const o = resolveOptions(optionKeys('pdrun'), opts);
  const [cmd, ...args] = command as [string, ...string[]];

  const resolved = resolveCommand(cmd);
  if (!resolved.ok) {
    stderr(`pdrun: ${cmd}: ${resolved.why === 'not-found' ? 'command not found' : 'permission denied'}\n`);
    return resolved.why === 'not-found' ? 127 : 126;
  }
  try {
    const elf = inspectElf(resolved.path);
    if (elf.go) printWarning(`pipedevice: ${cmd} is a Go binary: its sockets bypass libc, running on kernel TCP`);
    else if (elf.kind === 'static') printWarning(`pipedevice: ${cmd} is statically linked: no libc to interpose, running on kernel TCP`);
  } catch {
    /* unreadable: let exec decide */
  }

  const env: NodeJS.ProcessEnv = { ...process.env, PD_SOCKET: o.socket };
  if (o.log !== 'quiet') env.PD_LOG = o.log;
  if (existsSync(o.preload)) {
    env.LD_PRELOAD = withPreload(process.env, o.preload);
  } else {
    printWarning(`pipedevice: shim ${o.preload} not found (build it with \`make\`): running on kernel TCP`);
  }

  if (env.LD_PRELOAD && !resolveOptions(['noController']).noController) {
    // On success the probe's session fd stays open (close-on-exec) until pdrun
    // exits: it keeps an on-demand controller from idling out under the program.
    const c = await ensureController(o.socket, o.idleExit);
    if (!c.ok) {
      printWarning(`pipedevice: no controller at ${o.socket} (${c.reason}): running on kernel TCP`);
      env.PD_NO_CONTROLLER = '1';
    }
  }

  // The relay is in place before the child exists: a signal sent as soon as
  // the program is up must not meet Node's defaults (SIGUSR1 would start
  // the inspector and be lost).
  const foreground = [0, 1, 2].some((fd) => isatty(fd) && inForegroundOf(fd));
  let child: ReturnType<typeof spawn> | null = null;
  const early: NodeJS.Signals[] = [];
  for (const sig of RELAYED) {
    process.on(sig, () => {
      if (foreground && TTY_SIGNALS.includes(sig)) return; // the terminal already sent it to the child
      if (!child) {
        early.push(sig);
        return;
      }
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    });
  }
  child = spawn(resolved.path, args, { stdio: 'inherit', env, argv0: cmd });
  for (const sig of early) child.kill(sig);
  const started = child;
  return new Promise((resolve) => {
    started.on('error', (e: NodeJS.ErrnoException) => {
      stderr(`pdrun: ${cmd}: ${e.code === 'EACCES' ? 'permission denied' : errorMessage(e)}\n`);
      resolve(e.code === 'ENOENT' ? 127 : 126);
    });
    started.on('exit', (code, signal) => {
      resolve(signal ? 128 + (osConstants.signals[signal] ?? 0) : code ?? 1);
    });
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    stderr(`pdrun: ${errorMessage(e)}\n`);
    process.exit(e instanceof PdError && (e.code === 'PD_E_USAGE' || e.code === 'PD_E_OPTION') ? 2 : 1);
  },
);
