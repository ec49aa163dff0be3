package = "curio"
version = "scm-1"
source = {
  url = "git+https://github.com/curio-lua/curio-lua.git",
}
description = {
  summary = "Python's curio for Lua 5.4: tasks, timeouts, cancellation and sync on a C kernel over libev",
  detailed = [[
    Tasks are coroutines run by a C kernel on a libev loop; blocking calls
    (sleep, join, queue get, ...) suspend only the calling task. Timeouts,
    cancellation, task groups, queues and locks follow Python's curio.
    This rockspec builds the repository as it is, curio 0.1.0 (the
    version curio._VERSION and `curio -v` report).
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LIBEV = { header = "ev.h", library = "ev" },
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" }, -- curio.ssl's module (curio/tls.so)
  LIBEDIT = { header = "histedit.h" }, -- the prompt's (libedit itself is loaded when it starts)
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INC = "-I$(LUA_INCDIR) -I$(LIBEV_INCDIR) -I$(OPENSSL_INCDIR) -I$(LIBEDIT_INCDIR)",
    LUA = "$(LUA)",
    LIBDIR = "$(LIBDIR)", -- where the program finds curio/tls.so
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
    MANDIR = "$(PREFIX)/share/man",
  },
  copy_directories = { "docs" },
}
