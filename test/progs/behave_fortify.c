/* behave_fortify: behave built with _FORTIFY_SOURCE=2 (the Makefile builds
 * every test program with -O2), so that its reads of stack buffers of sizes
 * the compiler cannot see become __read_chk, __recv_chk, __recvfrom_chk and
 * __poll_chk: the shim must interpose those too. See the "chk" scenario. */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "behave.h"

int main(int argc, char **argv) { return behave_main(argc, argv); }
