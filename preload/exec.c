/* exec: the process's connections go on in the new image.
 *
 * Every exec entry point of libc is interposed (glibc's execl*, execvp and
 * friends call execve internally, not through the PLT). When the new image
 * will load this shim too (its LD_PRELOAD names it), the session writes what
 * the new image needs into its environment (PD_EXEC_STATE) and clears
 * FD_CLOEXEC on the descriptors that carries (session.c); the new image's
 * shim adopts them as it starts (init.c). If the exec fails, the descriptors
 * are as they were. An image without the shim (a static or set-uid binary,
 * LD_PRELOAD removed) gets nothing carried: its inherited sockets are plain
 * kernel sockets, and the session ends with the exec as before. */
#include <alloca.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "pd.h"

extern char **environ;

/* Does this environment preload us? */
static bool env_has_shim(char *const envp[])
{
	static char me[256];
	if (!me[0]) {
		Dl_info info;
		if (!dladdr((void *)env_has_shim, &info) || !info.dli_fname) return false;
		const char *slash = strrchr(info.dli_fname, '/');
		strncpy(me, slash ? slash + 1 : info.dli_fname, sizeof me - 1);
	}
	for (char *const *e = envp; e && *e; e++)
		if (!strncmp(*e, "LD_PRELOAD=", 11) && strstr(*e + 11, me)) return true;
	return false;
}

struct carry {
	void *token;
	char **env;
};

/* The environment to exec with: envp, or a copy with PD_EXEC_STATE. */
static char *const *carry_begin(struct carry *k, char *const envp[])
{
	k->token = NULL;
	k->env = NULL;
	if (pd_cfg.no_controller || !env_has_shim(envp)) return envp;
	char *state = pd_session_exec_save(&k->token);
	if (!state) return envp;
	size_t n = 0;
	for (char *const *e = envp; e && *e; e++) n++;
	k->env = malloc((n + 2) * sizeof *k->env);
	if (!k->env) {
		pd_session_exec_done(k->token, true);
		k->token = NULL;
		return envp;
	}
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], "PD_EXEC_STATE=", 14)) k->env[j++] = envp[i];
	k->env[j++] = state;
	k->env[j] = NULL;
	return k->env;
}

/* The exec returned: it failed. */
static int carry_end(struct carry *k, int r)
{
	int e = errno;
	if (k->token) pd_session_exec_done(k->token, true);
	free(k->env);
	errno = e;
	return r;
}

PD_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	struct carry k;
	char *const *env = carry_begin(&k, envp);
	return carry_end(&k, pd_real.execve(path, argv, env));
}

PD_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

PD_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	struct carry k;
	char *const *env = carry_begin(&k, envp);
	return carry_end(&k, pd_real.execvpe(file, argv, env));
}

PD_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

PD_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	struct carry k;
	char *const *env = carry_begin(&k, envp);
	return carry_end(&k, pd_real.fexecve(fd, argv, env));
}

/* execl*: gather the arguments, up to and with the NULL, into an argv. */
#define GATHER_ARGV(arg, ap, argv)                                   \
	do {                                                                   \
		size_t n_ = 1;                                                 \
		va_list c_;                                                    \
		va_copy(c_, ap);                                               \
		while (va_arg(c_, const char *)) n_++;                         \
		va_end(c_);                                                    \
		argv = alloca((n_ + 1) * sizeof(char *));                      \
		argv[0] = (char *)(arg);                                       \
		for (size_t i_ = 1; i_ <= n_; i_++) argv[i_] = va_arg(ap, char *); \
	} while (0)

PD_EXPORT int execl(const char *path, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	GATHER_ARGV(arg, ap, argv);
	va_end(ap);
	return execve(path, argv, environ);
}

PD_EXPORT int execlp(const char *file, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	GATHER_ARGV(arg, ap, argv);
	va_end(ap);
	return execvpe(file, argv, environ);
}

PD_EXPORT int execle(const char *path, const char *arg, ...)
{
	char **argv, **envp;
	va_list ap;
	va_start(ap, arg);
	GATHER_ARGV(arg, ap, argv);
	envp = va_arg(ap, char **); /* after the NULL */
	va_end(ap);
	return execve(path, argv, envp);
}
