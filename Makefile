# Builds the shim (preload/libpd.so), its sanitizer variants, and the C
# programs the test suite runs. `make` builds the shim; `make all-variants`
# adds the ASan/UBSan and TSan builds; `make progs` the test programs.
CC      ?= cc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  ?= -O2 -g
SHIM_SRC := $(wildcard preload/*.c)
SHIM_HDR := $(wildcard preload/*.h)
PROG_SRC := $(wildcard test/progs/*.c)
PROG_BIN := $(patsubst test/progs/%.c,test/progs/bin/%,$(PROG_SRC))

.PHONY: all all-variants progs clean
all: preload/libpd.so

all-variants: preload/libpd.so preload/libpd-asan.so preload/libpd-tsan.so

preload/libpd.so: $(SHIM_SRC) $(SHIM_HDR)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -fPIC -shared -fvisibility=hidden -o $@ $(SHIM_SRC) -ldl -lpthread

preload/libpd-asan.so: $(SHIM_SRC) $(SHIM_HDR)
	$(CC) $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -fPIC -shared -fvisibility=hidden -o $@ $(SHIM_SRC) -ldl -lpthread

preload/libpd-tsan.so: $(SHIM_SRC) $(SHIM_HDR)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=thread -Wno-tsan -fPIC -shared -fvisibility=hidden -o $@ $(SHIM_SRC) -ldl -lpthread

progs: $(PROG_BIN)

test/progs/bin/%: test/progs/%.c test/progs/*.h
	@mkdir -p test/progs/bin
	$(CC) $(CSTD) $(WARN) -O2 -g -o $@ $< -lpthread

clean:
	rm -f preload/*.so test/progs/bin/*
