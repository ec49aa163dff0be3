/* core/editline.c: the prompt's input (module curio.editline), linked
 * only into the `curio` program (main.c preloads it; core.so does not
 * need libedit). lua/curio/prompt.lua is its one user and its policy.
 *
 *   local ed = editline.open(history_path)  -- a terminal editor on stdin
 *   ed:start("> ")          -- a new line: raw mode, the prompt shown
 *   ed:feed()  -> line | false | nil
 *   ed:interrupt()          -- drop the line being typed (Ctrl-C)
 *   ed:redraw()             -- after SIGWINCH or SIGCONT
 *   ed:add_history(line)    ed:close()
 *   editline.read(fd) -> bytes | "" at the end | false | nil, message
 *   editline.isatty(fd) -> boolean
 *
 * Rules:
 * 1. libedit runs in its unbuffered mode (EL_UNBUFFERED): el_gets handles
 *    one key and returns, so the editor never blocks the kernel. The
 *    caller waits until the descriptor is readable (a task waits with
 *    core.wait_fd) and then calls feed(), which takes the keys already
 *    typed, up to EDITOR_FEED_KEYS: a long paste is taken over several
 *    turns of the loop, other tasks running between them. A key sequence
 *    cut between two reads (an escape sequence) may make libedit wait for
 *    its end, which a terminal sends at once; so does a command that reads
 *    keys of its own (^V, an incremental search with ^R): the kernel waits
 *    with it until the user types them.
 * 2. The terminal is in raw mode only between start() and the end of the
 *    line (or interrupt(), or close()): while a line runs, the terminal
 *    is as the user had it, so Ctrl-C sends SIGINT and a line may read
 *    stdin itself.
 * 3. The editor reads a duplicate of descriptor 0 (close-on-exec): a line
 *    that closes stdin does not take the prompt's input away.
 * 4. No signal handlers (no EL_SIGNAL): the kernel watches SIGINT and the
 *    prompt decides what it means.
 * 5. History lives in memory (1000 lines, no repeats) and, given a path,
 *    is read at open and saved after each line, so that os.exit keeps it;
 *    a path that cannot be read or written gives no history file, no
 *    error.
 * 6. close() (also __close and __gc) gives the terminal back as it was,
 *    once; the other methods raise on a closed editor.
 * 7. libedit is loaded by open() (dlopen), not linked: linked, its four
 *    libraries made every start of the program about a fifth slower (task
 *    clock of `curio -e ''`), for a prompt most runs never show. Without
 *    it, open() raises and the prompt reads plain lines. Its functions are
 *    the editor's own pointers (no global state); the prompt callback,
 *    which libedit gives only the EditLine, finds el_get by asking the
 *    loader for the library already loaded.
 * 8. Keys typed faster than read (a paste) that are printable ASCII go
 *    into the line as one string, drawn once: key by key, libedit redraws
 *    a long line at every wrap, and a paste of n keys cost about n*n/80
 *    (10 000 keys: 4 s). They are read one byte at a time, as libedit
 *    reads, so that nothing after the line is taken from the terminal
 *    (the line may read stdin); the first other key is handed back to
 *    libedit (el_push) whole. Only with emacs bindings, where printable
 *    keys insert themselves. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <histedit.h>
#include <lua.h>
#include <lauxlib.h>

#define EDITOR_MT "curio.editor"
#define EDITOR_HISTORY 1000
#define EDITOR_READ 65536
#define EDITOR_FEED_KEYS 256 /* keys a feed() takes at most (rule 1) */
#define EDITOR_PASTE 4096 /* bytes of a pasted run inserted at once (rule 8) */
#define EDITOR_REDRAW_KEYS "\033[9999~" /* no terminal sends it: bound to ed-redisplay */
#define EDITOR_EOF_KEY '\004' /* libedit's line on Ctrl-D at an empty line */
#define EDITOR_LIBRARY "libedit.so.2"

/* Rule 7: the functions of libedit the editor calls. */
struct editor_lib {
  void *handle;
  EditLine *(*init)(const char *, FILE *, FILE *, FILE *);
  void (*end)(EditLine *);
  int (*set)(EditLine *, int, ...);
  const char *(*gets)(EditLine *, int *);
  int (*source)(EditLine *, const char *);
  int (*get)(EditLine *, int, ...);
  int (*insertstr)(EditLine *, const char *);
  void (*push)(EditLine *, const char *);
  void (*resize)(EditLine *);
  History *(*history_init)(void);
  void (*history_end)(History *);
  int (*history)(History *, HistEvent *, int, ...);
};

struct editor {
  struct editor_lib lib;
  EditLine *el;       /* NULL once closed */
  History *history;
  FILE *in;           /* over the duplicate of stdin (rule 3) */
  int fd;
  int editing;        /* between start() and the line's end (rule 2) */
  int emacs;          /* emacs key bindings: printable keys insert (rule 8) */
  char *prompt;
  char *history_path; /* NULL: no history file */
};

int luaopen_curio_editline(lua_State *L);

/* Rule 7: dlsym's object pointer to a function pointer, as POSIX allows. */
static void editor_sym(void *handle, const char *name, void *slot, int *missing) {
  void *sym = dlsym(handle, name);
  memcpy(slot, &sym, sizeof sym);
  if (sym == NULL) *missing = 1;
}

/* Loads libedit into lib; -> 0, or -1 (lib->handle NULL). */
static int editor_load(struct editor_lib *lib) {
  int missing = 0;
  /* (never unloaded: what libedit and its terminal library keep in their
   * own statics stays theirs, not a leak) */
  lib->handle = dlopen(EDITOR_LIBRARY, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (lib->handle == NULL) return -1;
  editor_sym(lib->handle, "el_init", &lib->init, &missing);
  editor_sym(lib->handle, "el_end", &lib->end, &missing);
  editor_sym(lib->handle, "el_set", &lib->set, &missing);
  editor_sym(lib->handle, "el_gets", &lib->gets, &missing);
  editor_sym(lib->handle, "el_source", &lib->source, &missing);
  editor_sym(lib->handle, "el_get", &lib->get, &missing);
  editor_sym(lib->handle, "el_insertstr", &lib->insertstr, &missing);
  editor_sym(lib->handle, "el_push", &lib->push, &missing);
  editor_sym(lib->handle, "el_resize", &lib->resize, &missing);
  editor_sym(lib->handle, "history_init", &lib->history_init, &missing);
  editor_sym(lib->handle, "history_end", &lib->history_end, &missing);
  editor_sym(lib->handle, "history", &lib->history, &missing);
  if (!missing) return 0;
  dlclose(lib->handle);
  lib->handle = NULL;
  return -1;
}

/* The prompt (EL_PROMPT): libedit passes only the EditLine; the editor is
 * its client data, read with el_get from the library loaded (rule 7). */
static char *editor_prompt(EditLine *el) {
  struct editor *e = NULL;
  int (*get)(EditLine *, int, ...) = NULL;
  void *handle = dlopen(EDITOR_LIBRARY, RTLD_LAZY | RTLD_NOLOAD);
  if (handle != NULL) {
    int missing = 0;
    editor_sym(handle, "el_get", &get, &missing);
    if (get != NULL) get(el, EL_CLIENTDATA, &e);
    dlclose(handle); /* (the editor's own handle keeps it loaded) */
  }
  return e != NULL && e->prompt != NULL ? e->prompt : "";
}

static struct editor *editor_check_open(lua_State *L) {
  struct editor *e = luaL_checkudata(L, 1, EDITOR_MT);
  if (e->el == NULL) luaL_error(L, "editor is closed");
  return e;
}

/* Rule 2: the terminal back in the user's mode, the line left behind. */
static void editor_stop(struct editor *e) {
  if (!e->editing) return;
  e->lib.set(e->el, EL_UNBUFFERED, 0);
  e->editing = 0;
}

/* Rule 6, the one close. */
static int editor_close(lua_State *L) {
  struct editor *e = luaL_checkudata(L, 1, EDITOR_MT);
  if (e->el == NULL) return 0;
  editor_stop(e);
  e->lib.end(e->el);
  e->el = NULL;
  e->lib.history_end(e->history);
  e->history = NULL;
  fclose(e->in);
  e->in = NULL;
  free(e->prompt);
  free(e->history_path);
  e->prompt = e->history_path = NULL;
  dlclose(e->lib.handle);
  e->lib.handle = NULL;
  return 0;
}

/* libedit decodes keys by the locale: one that is not UTF-8 (a bare "C")
 * would drop every byte above 127, so the prompt takes C.UTF-8 then. */
static void editor_locale(void) {
  const char *name = setlocale(LC_CTYPE, "");
  if (name == NULL || (strstr(name, "UTF-8") == NULL && strstr(name, "utf8") == NULL))
    setlocale(LC_CTYPE, "C.UTF-8");
}

/* editline.open([history_path]) -> an editor on the terminal at stdin;
 * raises when libedit cannot be loaded or started. */
static int l_open(lua_State *L) {
  const char *path = luaL_optstring(L, 1, NULL);
  struct editor *e = lua_newuserdatauv(L, sizeof *e, 0);
  struct editor_lib *lib = &e->lib;
  HistEvent ev;
  memset(e, 0, sizeof *e); /* (e->el NULL until all is made: __gc does nothing) */
  luaL_setmetatable(L, EDITOR_MT);
  if (editor_load(lib) < 0) {
    lua_pushfstring(L, "cannot load %s", EDITOR_LIBRARY);
    return lua_error(L);
  }
  e->fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
  e->in = e->fd >= 0 ? fdopen(e->fd, "r") : NULL;
  e->history = e->in != NULL ? lib->history_init() : NULL;
  if (e->history != NULL) {
    editor_locale();
    e->el = lib->init("curio", e->in, stdout, stderr);
  }
  if (e->el == NULL) {
    int err = errno; /* (0 when libedit found no terminal to use) */
    if (e->history != NULL) lib->history_end(e->history);
    if (e->in != NULL) fclose(e->in);
    else if (e->fd >= 0) close(e->fd);
    dlclose(lib->handle);
    e->history = NULL, e->in = NULL, lib->handle = NULL;
    lua_pushfstring(L, "cannot start the editor: %s", err != 0 ? strerror(err) : "no terminal");
    return lua_error(L);
  }
  lib->history(e->history, &ev, H_SETSIZE, EDITOR_HISTORY);
  lib->history(e->history, &ev, H_SETUNIQUE, 1);
  if (path != NULL) {
    e->history_path = strdup(path);
    lib->history(e->history, &ev, H_LOAD, path); /* rule 5: none yet is no error */
  }
  lib->set(e->el, EL_CLIENTDATA, e);
  lib->set(e->el, EL_EDITOR, "emacs");
  lib->set(e->el, EL_PROMPT, editor_prompt);
  lib->set(e->el, EL_HIST, lib->history, e->history);
  lib->source(e->el, NULL); /* the user's ~/.editrc, if any */
  const char *mode = NULL;
  lib->get(e->el, EL_EDITOR, &mode);
  e->emacs = mode != NULL && strcmp(mode, "emacs") == 0;
  lib->set(e->el, EL_BIND, EDITOR_REDRAW_KEYS, "ed-redisplay", NULL);
  return 1;
}

/* ed:start(prompt): begins a line (rule 2). */
static int l_start(lua_State *L) {
  struct editor *e = editor_check_open(L);
  const char *prompt = luaL_checkstring(L, 2);
  char *copy = strdup(prompt);
  if (copy == NULL) return luaL_error(L, "not enough memory");
  free(e->prompt);
  e->prompt = copy;
  editor_stop(e);
  fflush(stdout);
  e->lib.set(e->el, EL_UNBUFFERED, 1); /* raw mode, a fresh line, the prompt */
  e->editing = 1;
  return 0;
}

/* Whether the terminal is gone (nothing to read will ever come). */
static int editor_hung_up(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int avail = 0;
  if (ioctl(fd, FIONREAD, &avail) < 0) return 1;
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Rule 8: reads the printable ASCII keys waiting (avail of them at most)
 * into the line, drawn once; hands the first other key back to libedit.
 * -> how many keys were read, and *held whether one was handed back. */
static int editor_paste(struct editor *e, int avail, int *held) {
  char run[EDITOR_PASTE + 1], key[8];
  size_t len = 0, key_len = 0;
  int n;
  while (avail > 0 && len < EDITOR_PASTE) {
    unsigned char c;
    if (read(e->fd, &c, 1) != 1) break;
    avail--;
    if (c >= 0x20 && c < 0x7f) {
      run[len++] = (char)c;
      continue;
    }
    key[key_len++] = (char)c; /* (with the rest of its UTF-8 character) */
    for (int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0; more > 0 && avail > 0; more--) {
      if (read(e->fd, key + key_len, 1) != 1) break;
      key_len++, avail--;
    }
    break;
  }
  if (len > 0) {
    run[len] = '\0';
    e->lib.insertstr(e->el, run);
    e->lib.push(e->el, EDITOR_REDRAW_KEYS);
    e->lib.gets(e->el, &n); /* (the redraw: it ends no line) */
  }
  *held = key_len > 0 && key[0] != '\0'; /* (a NUL key is lost: el_push takes a string) */
  if (*held) {
    key[key_len] = '\0';
    e->lib.push(e->el, key);
  }
  return (int)(len + key_len);
}

/* ed:feed() -> the line (without its newline) once Enter ends it; false
 * when more keys are needed; nil at the end of input (Ctrl-D at an empty
 * line, or the terminal gone). Call it when the descriptor is readable
 * (rule 1). */
static int l_feed(lua_State *L) {
  struct editor *e = editor_check_open(L);
  int first = 1;
  luaL_argcheck(L, e->editing, 1, "no line started");
  for (int keys = 0; keys < EDITOR_FEED_KEYS; keys++) {
    int avail = 0, n = 0;
    if (ioctl(e->fd, FIONREAD, &avail) < 0 || avail <= 0) {
      if (first && editor_hung_up(e->fd)) {
        editor_stop(e);
        lua_pushnil(L);
        return 1;
      }
      break; /* (all taken; or keys dropped since the wake-up: Ctrl-C flushes them) */
    }
    first = 0;
    if (avail > 1 && e->emacs) { /* rule 8 */
      int held = 0, taken = editor_paste(e, avail, &held);
      keys += taken / 16;
      if (!held) continue;
    }
    /* NULL: the line is empty after that key (libedit's unbuffered mode
     * says so with n == -1, as it says an error: none can come, a key was
     * there to read) */
    const char *line = e->lib.gets(e->el, &n);
    if (line == NULL || n <= 0) continue;
    if (n == 1 && line[0] == EDITOR_EOF_KEY) {
      editor_stop(e);
      lua_pushnil(L);
      return 1;
    }
    if (line[n - 1] == '\n') {
      lua_pushlstring(L, line, (size_t)n - 1);
      editor_stop(e);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* ed:interrupt(): drops the line being typed; start() begins another. */
static int l_interrupt(lua_State *L) {
  struct editor *e = editor_check_open(L);
  editor_stop(e);
  return 0;
}

/* ed:redraw(): after the terminal changed under the editor (SIGWINCH: its
 * size; SIGCONT: back from Ctrl-Z, its modes the shell's): the line being
 * typed is drawn again on a new line, the terminal raw again (rule 2). */
static int l_redraw(lua_State *L) {
  struct editor *e = editor_check_open(L);
  if (!e->editing) return 0;
  e->lib.set(e->el, EL_PREP_TERM, 0); /* (libedit's idea of the modes, then the terminal's) */
  e->lib.set(e->el, EL_PREP_TERM, 1);
  e->lib.resize(e->el);
  e->lib.set(e->el, EL_REFRESH);
  return 0;
}

/* ed:add_history(line): remembered for the Up arrow, and saved (rule 5). */
static int l_add_history(lua_State *L) {
  struct editor *e = editor_check_open(L);
  const char *line = luaL_checkstring(L, 2);
  HistEvent ev;
  if (line[0] == '\0') return 0;
  e->lib.history(e->history, &ev, H_ENTER, line);
  if (e->history_path != NULL) e->lib.history(e->history, &ev, H_SAVE, e->history_path);
  return 0;
}

/* ed:fileno() -> the descriptor to wait on. */
static int l_fileno(lua_State *L) {
  struct editor *e = editor_check_open(L);
  lua_pushinteger(L, e->fd);
  return 1;
}

/* editline.read(fd) -> up to 64 KiB read once ("" at the end of input),
 * false if nothing is there yet (a non-blocking descriptor), or nil and
 * the system's message. For the prompt's input when it is no terminal:
 * one read() after the descriptor was readable never blocks. */
static int l_read(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  ssize_t n;
  struct pollfd ready = {(int)fd, POLLIN, 0};
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "file descriptor expected");
  if (poll(&ready, 1, 0) == 0) { /* (a wait that woke for nothing: never block) */
    lua_pushboolean(L, 0);
    return 1;
  }
  char *p = luaL_buffinitsize(L, &b, EDITOR_READ);
  do n = read((int)fd, p, EDITOR_READ); while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (n < 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* editline.isatty(fd) -> whether fd is a terminal. */
static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && fd <= 0x7fffffff && isatty((int)fd));
  return 1;
}

static const luaL_Reg editor_methods[] = {
  {"start", l_start},
  {"feed", l_feed},
  {"interrupt", l_interrupt},
  {"redraw", l_redraw},
  {"add_history", l_add_history},
  {"fileno", l_fileno},
  {"close", editor_close},
  {NULL, NULL}
};

int luaopen_curio_editline(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"open", l_open},
    {"read", l_read},
    {"isatty", l_isatty},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, EDITOR_MT)) {
    luaL_newlib(L, editor_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, editor_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, editor_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, functions);
  return 1;
}
