/* core/signals.h (not signal.h, which would hide libc's from -Icore): signals as objects tasks wait on (rules in signal.c). */
#ifndef CURIO_SIGNALS_H
#define CURIO_SIGNALS_H

#include <lua.h>

void signal_open(lua_State *L, int ctx);

#endif
