/* Which symbols libnetkit exports. The library is compiled with -fvisibility=hidden, so
 * everything is private to it unless declared between NK_API_BEGIN and NK_API_END, which every
 * public header puts around its declarations; src/libnetkit.map then lets out only the nk_
 * names (never the internal nk__ ones). For programs using the headers the markers change
 * nothing. */
#ifndef NETKIT_API_H
#define NETKIT_API_H

#if defined(__GNUC__) && __GNUC__ >= 4
#define NK_API_BEGIN _Pragma("GCC visibility push(default)")
#define NK_API_END _Pragma("GCC visibility pop")
#else
#define NK_API_BEGIN
#define NK_API_END
#endif

#endif
