// Resolves a command the way execvp would: a name with a slash as given,
// otherwise the first executable regular file along PATH.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Resolved =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly why: 'not-found' | 'not-executable' };

function check(path: string): Resolved {
  try {
    if (!statSync(path).isFile()) return { ok: false, why: 'not-found' };
    accessSync(path, constants.X_OK);
    return { ok: true, path };
  } catch (e) {
    return { ok: false, why: (e as NodeJS.ErrnoException).code === 'EACCES' ? 'not-executable' : 'not-found' };
  }
}

export function resolveCommand(cmd: string, env: NodeJS.ProcessEnv = process.env): Resolved {
  if (cmd === '') return { ok: false, why: 'not-found' };
  if (cmd.includes('/')) return check(cmd);
  let sawUnexecutable = false;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const r = check(join(dir || '.', cmd));
    if (r.ok) return r;
    if (r.why === 'not-executable') sawUnexecutable = true;
  }
  return { ok: false, why: sawUnexecutable ? 'not-executable' : 'not-found' };
}
