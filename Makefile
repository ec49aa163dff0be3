# curio for Lua. `make help` lists the targets.
PREFIX   ?= /usr/local
LUA      ?= lua5.4
LUA_INC  ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIB  := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
LUA_VER  := 5.4
LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_VER)
LUADIR   ?= $(PREFIX)/share/lua/$(LUA_VER)
BINDIR   ?= $(PREFIX)/bin
INCDIR   ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
CFLAGS   ?= -O2 -g
XCFLAGS  := -std=c11 -Wall -Wextra -Werror -fPIC -D_DEFAULT_SOURCE $(LUA_INC) $(CFLAGS)
LDLIBS   := -lev -lm -lpthread
SSL_LIBS := -lssl -lcrypto
BUILD    ?= build
BUSTED   ?= $(LUA) /usr/bin/busted
LUAENV   := LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./$(BUILD)/?.so;;'

CORE_SRC := core/kernel.c core/task.c core/taskext.c core/inspect.c core/trap.c core/timer.c core/wait.c core/waitq.c core/shutdown.c \
            core/coro.c core/queue.c core/priority.c core/group.c core/codec.c core/codec_encode.c core/codec_decode.c core/codec_frame.c core/inbox.c core/threads.c core/universal.c core/universal_wait.c core/universal_methods.c core/fileio.c \
            core/io.c core/socket.c core/sockio.c core/sockbuf.c core/sockout.c core/bigblock.c core/address.c core/process.c \
            core/errors.c core/ctx.c core/module.c
CORE_SRC += core/spawn.c core/worker.c core/orphan.c core/pipe.c core/signal.c
CORE_OBJ := $(CORE_SRC:core/%.c=$(BUILD)/obj/%.o)
# curio.ssl's C part (curio.tls), a module of its own so that only its first
# use loads OpenSSL (whose relocations would double every start-up); the
# program loads it too (core/main.c), libcurio links it in.
TLS_SRC  := core/tls.c core/tlssock.c core/tlsctx.c core/tlsinfo.c core/tlsauth.c
TLS_OBJ  := $(TLS_SRC:core/%.c=$(BUILD)/obj/%.o)
# libcurio, for C programs (curio.h): the core, the embedding API and the
# Lua modules compiled in (tools/embed.lua).
SOVERSION := 0
VERSION  := 0.1.0
LIB_OBJ  := $(CORE_OBJ) $(TLS_OBJ) $(BUILD)/obj/host.o $(BUILD)/obj/hostopts.o $(BUILD)/obj/embed.o
LIBS_OUT := $(BUILD)/lib/libcurio.so.$(VERSION) $(BUILD)/lib/libcurio.so.$(SOVERSION) \
            $(BUILD)/lib/libcurio.so $(BUILD)/lib/libcurio.a
HOST_BINS := $(patsubst tests/%.c,$(BUILD)/bin/%,$(wildcard tests/host_*.c)) $(BUILD)/bin/embed_example
CLIBDIR  ?= $(PREFIX)/lib
LUA_SRC  := $(wildcard lua/curio/*.lua)
SPECS    ?= spec

.PHONY: all deps test check tsan fuzz lint bench soak install uninstall clean run help

all: $(BUILD)/curio/core.so $(BUILD)/curio/tls.so $(BUILD)/bin/curio $(BUILD)/bin/two_kernels $(LIBS_OUT) $(HOST_BINS) \
     $(BUILD)/bin/pty_drive $(BUILD)/bin/soak_load

help:
	@echo "make deps | all | run [HOST=...] [PORT=...] | test | check | tsan | lint | bench | soak [SOAK_SECONDS=...] | install PREFIX=... | clean"

deps:
	sh tools/deps.sh

$(BUILD)/obj/%.o: core/%.c core/*.h
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -c $< -o $@

$(BUILD)/curio/core.so: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -shared -o $@ $(CORE_OBJ) $(LDFLAGS) $(LDLIBS)

# Its references to the core resolve in core.so, which makes itself global
# first (core.export_symbols, called by lua/curio/ssl.lua).
$(BUILD)/curio/tls.so: $(TLS_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -shared -o $@ $(TLS_OBJ) $(LDFLAGS) $(SSL_LIBS)

$(BUILD)/gen/embed.c: tools/embed.lua $(LUA_SRC)
	@mkdir -p $(dir $@)
	$(LUA) tools/embed.lua $@ $(LUA_SRC)

$(BUILD)/obj/embed.o: $(BUILD)/gen/embed.c
	$(CC) $(XCFLAGS) -Wno-overlength-strings -c $< -o $@

# The program alone has the prompt's input (core/editline.c), which loads
# libedit when the prompt starts (libedit-dev for its header).
$(BUILD)/bin/curio: $(BUILD)/obj/main.o $(BUILD)/obj/editline.o $(BUILD)/obj/embed.o $(CORE_OBJ) | $(BUILD)/curio/tls.so
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -o $@ $(filter %.o,$^) -Wl,-E $(LDFLAGS) $(LUA_LIB) $(LDLIBS) -ldl

# The program loads curio.tls from tls.so (core/main.c): where it is installed.
$(BUILD)/obj/main.o: XCFLAGS += -DCURIO_LIBDIR='"$(LIBDIR)"'

$(BUILD)/bin/two_kernels: tests/two_kernels.c
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -o $@ $< $(LDFLAGS) $(LUA_LIB) -lpthread

# Drives a program through a pseudo-terminal (spec/prompt_spec.lua).
$(BUILD)/bin/pty_drive: tests/pty_drive.c
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -o $@ $< $(LDFLAGS) -lutil

# The soak's load generator (tests/soak/, make soak).
SOAK_SRC := tests/soak/soak_load.c tests/soak/soak_conn.c tests/soak/soak_proc.c
$(BUILD)/bin/soak_load: $(SOAK_SRC) tests/soak/soak.h
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -o $@ $(SOAK_SRC) $(LDFLAGS) $(SSL_LIBS)

$(BUILD)/lib/libcurio.so.$(VERSION): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -shared -Wl,-soname,libcurio.so.$(SOVERSION) -o $@ $(LIB_OBJ) $(LDFLAGS) $(SSL_LIBS) $(LDLIBS)

$(BUILD)/lib/libcurio.so.$(SOVERSION) $(BUILD)/lib/libcurio.so: $(BUILD)/lib/libcurio.so.$(VERSION)
	ln -sf libcurio.so.$(VERSION) $@

$(BUILD)/lib/libcurio.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

# The C host programs (tests/host_*.c, examples/embed), on the static library.
$(BUILD)/bin/host_%: tests/host_%.c tests/host_util.h core/curio.h $(BUILD)/lib/libcurio.a
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -Icore -o $@ $< $(BUILD)/lib/libcurio.a $(LDFLAGS) $(LUA_LIB) $(SSL_LIBS) $(LDLIBS)

$(BUILD)/bin/embed_example: examples/embed/host.c core/curio.h $(BUILD)/lib/libcurio.a
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) -Icore -o $@ $< $(BUILD)/lib/libcurio.a $(LDFLAGS) $(LUA_LIB) $(SSL_LIBS) $(LDLIBS)

# The echo server on HOST (default: every interface) and PORT (25000).
HOST     ?=
PORT     ?= 25000
run: all
	$(LUAENV) $(LUA) examples/echo_server.lua "$(HOST)" $(PORT)

test: all
	$(LUAENV) $(BUSTED) $(BUSTED_FLAGS) $(SPECS)

# The whole suite on an AddressSanitizer + UBSan build, then valgrind on a subset
# and on a session at the prompt (tests/prompt_session.txt, on a pseudo-terminal).
ASAN_RT := $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
check:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" all
	LD_PRELOAD="$(ASAN_RT)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build-asan/?.so;;' \
	  CURIO_BIN=build-asan/bin/curio $(BUSTED) $(BUSTED_FLAGS) $(SPECS)
	$(MAKE) all
	$(LUAENV) CURIO_NO_PIDFD=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	  $(LUA) spec/support/memcheck.lua
	home=$$(mktemp -d) && HOME=$$home $(BUILD)/bin/pty_drive 120 tests/prompt_session.txt \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $(BUILD)/bin/curio \
	  >/dev/null; status=$$?; rm -rf $$home; exit $$status

# The thread specs on a ThreadSanitizer build (worker threads, the pool's
# queues and the async hand-back).
TSAN_RT := $(shell $(CC) -print-file-name=libtsan.so)
TSAN_SPECS ?= spec/thread_spec.lua spec/universal_spec.lua spec/codec_spec.lua spec/embed_spec.lua
tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g -fsanitize=thread" all
	LD_PRELOAD="$(TSAN_RT)" TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" \
	  LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build-tsan/?.so;;' \
	  CURIO_BIN=build-tsan/bin/curio $(BUSTED) $(BUSTED_FLAGS) $(TSAN_SPECS)

# libFuzzer on the codec's decoder (Debian's clang), for FUZZ_SECONDS; what
# it finds goes to tests/fuzz/regressions/, which spec/codec_spec.lua runs.
FUZZ_SECONDS ?= 60
fuzz:
	@mkdir -p $(BUILD)/bin $(BUILD)/fuzz-corpus tests/fuzz/regressions
	clang -g -O1 -fsanitize=fuzzer,address,undefined $(LUA_INC) -Icore \
	  -o $(BUILD)/bin/fuzz_decode tests/fuzz_decode.c core/codec.c core/codec_encode.c core/codec_decode.c core/codec_frame.c $(LUA_LIB)
	cp tests/fuzz/corpus/* $(BUILD)/fuzz-corpus/
	$(BUILD)/bin/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=tests/fuzz/regressions/ \
	  $(BUILD)/fuzz-corpus

# Lint: luacheck, the one place of argument errors, the layering of core/
# (tools/layers.lua: its concern table is the one list to edit when a file
# is added or renamed), cppcheck, and that the committed benchmark CSV
# parses and every chart bench/README.md shows exists (no benchmark runs).
lint: $(CORE_OBJ) $(TLS_OBJ) $(BUILD)/obj/editline.o $(BUILD)/obj/host.o $(BUILD)/obj/hostopts.o
	luacheck -q lua spec examples bench tools tests
	sh tools/lint_args.sh
	$(LUA) tools/layers.lua $(CORE_OBJ) $(TLS_OBJ) $(BUILD)/obj/editline.o $(BUILD)/obj/host.o $(BUILD)/obj/hostopts.o
	cppcheck -q --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem --suppress=toomanyconfigs $(LUA_INC) core tests
	$(LUA) bench/report.lua check bench/results/latest.csv bench/README.md

# Every benchmark family with every peer installed, then the report in
# bench/results/ (bench/README.md); FAMILY="echo tls" runs some families only.
FAMILY ?=
bench: all
	bash bench/report.sh $(FAMILY)

# The soak (tests/soak/soak.sh): the servers under load and faults for
# SOAK_SECONDS; fails on any error, lost byte or leak.
SOAK_SECONDS ?= 300
soak: all
	SOAK_SECONDS=$(SOAK_SECONDS) BUILD=$(BUILD) bash tests/soak/soak.sh

install: all
	install -d $(DESTDIR)$(LIBDIR)/curio $(DESTDIR)$(LUADIR)/curio $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(INCDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(CLIBDIR)/pkgconfig
	install -m 755 $(BUILD)/curio/core.so $(DESTDIR)$(LIBDIR)/curio/core.so
	install -m 755 $(BUILD)/curio/tls.so $(DESTDIR)$(LIBDIR)/curio/tls.so
	install -m 644 $(LUA_SRC) $(DESTDIR)$(LUADIR)/curio/
	install -m 755 $(BUILD)/bin/curio $(DESTDIR)$(BINDIR)/curio
	install -m 644 core/curio.h $(DESTDIR)$(INCDIR)/curio.h
	install -m 644 docs/curio.1 $(DESTDIR)$(MANDIR)/man1/curio.1
	install -m 755 $(BUILD)/lib/libcurio.so.$(VERSION) $(DESTDIR)$(CLIBDIR)/
	ln -sf libcurio.so.$(VERSION) $(DESTDIR)$(CLIBDIR)/libcurio.so.$(SOVERSION)
	ln -sf libcurio.so.$(VERSION) $(DESTDIR)$(CLIBDIR)/libcurio.so
	install -m 644 $(BUILD)/lib/libcurio.a $(DESTDIR)$(CLIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(CLIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' tools/curio.pc.in > $(DESTDIR)$(CLIBDIR)/pkgconfig/curio.pc

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)/curio $(DESTDIR)$(LUADIR)/curio $(DESTDIR)$(BINDIR)/curio \
	  $(DESTDIR)$(INCDIR)/curio.h $(DESTDIR)$(MANDIR)/man1/curio.1 $(DESTDIR)$(CLIBDIR)/libcurio.so* \
	  $(DESTDIR)$(CLIBDIR)/libcurio.a $(DESTDIR)$(CLIBDIR)/pkgconfig/curio.pc

clean:
	rm -rf build build-asan build-tsan
