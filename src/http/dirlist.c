/* Directory listings: an HTML5 page or a JSON array.
 *
 * The caller keeps its directory descriptor: we read through a duplicate (fdopendir takes
 * ownership of the descriptor it is given and closedir closes it). The duplicate shares the
 * file offset, so we rewind before reading.
 *
 * A listing shows only what a request for its links would serve, and each link fetches
 * exactly the entry it names. Left out: names a request cannot carry (control characters, a
 * backslash, invalid UTF-8: the server answers such a path 400, see nk_http_name_servable),
 * temporary upload files (NK_HTTP_UPLOAD_TMP_PREFIX) whatever the options, dotfiles unless
 * show_dotfiles, anything that is neither a regular file nor a directory (devices, FIFOs,
 * sockets: never served), and symbolic links that would be refused. A link is judged by the
 * caller's resolve callback, which opens it as a request would (confinement to the root,
 * the rules on the resolved path) and reports what it leads to; without a callback a link is
 * followed with fstatat. A link is listed with its target's type, size and time, so a link
 * to a directory is a directory; a dangling link is left out (it would be 404).
 *
 * Limits: at most DIRLIST_MAX_ENTRIES entries and DIRLIST_MAX_NAME_BYTES bytes of names are
 * collected, because a directory can hold millions of files and the listing is built in
 * memory; past either limit the listing is cut short (in readdir order, so an arbitrary
 * subset). Of the entries collected, at most max_rows (NK_HTTP_DIRLIST_MAX_ROWS by default)
 * are rendered, the first in the listing's order, so a huge directory costs a bounded page;
 * the HTML page then says that the list was truncated and how many entries are not shown.
 * The output buffer's own maximum bounds the page.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "netkit/buf.h"
#include "netkit/http.h"

#define DIRLIST_MAX_ENTRIES 100000
#define DIRLIST_MAX_NAME_BYTES (16u << 20)

typedef struct dl_entry {
    int is_dir;
    int have_size;
    uint64_t size;
    time_t mtime;
    size_t nlen;
    char name[]; /* NUL-terminated */
} dl_entry;

typedef struct dl_list {
    dl_entry **e;
    size_t n, cap;
    size_t name_bytes;
    size_t omitted; /* entries left out by the limits */
} dl_list;

static void list_free(dl_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i]);
    free(l->e);
}

/* Would a request for this name be served? The name rules; the entry's type is checked by
 * list_add once it is known. */
static int name_listed(const char *name, size_t nlen, const nk_http_dirlist_opts *o)
{
    if (name[0] == '.' && !o->show_dotfiles)
        return 0;
    if (nk_http_path_has_upload_tmp(name))
        return 0;
    return nk_http_name_servable(name, nlen);
}

static int list_add(dl_list *l, int dfd, const char *name, const nk_http_dirlist_opts *o)
{
    size_t nlen = strlen(name);
    struct stat st;

    if (!name_listed(name, nlen, o))
        return 0;
    if (l->n >= DIRLIST_MAX_ENTRIES || l->name_bytes + nlen > DIRLIST_MAX_NAME_BYTES) {
        l->omitted++;
        return 0;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0; /* removed while we read the directory: not there any more */
    if (S_ISLNK(st.st_mode)) {
        /* Listed as what it leads to, and only when a request for it would be served. Any
         * failure (refused, dangling, out of descriptors) leaves the entry out. */
        int r = o->resolve ? o->resolve(o->ctx, name, &st) : fstatat(dfd, name, &st, 0);
        if (r < 0)
            return 0;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return 0; /* devices, FIFOs and sockets are never served */
    int is_dir = S_ISDIR(st.st_mode), have_size = S_ISREG(st.st_mode);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        dl_entry **e = realloc(l->e, cap * sizeof(dl_entry *));
        if (!e)
            return -ENOMEM;
        l->e = e;
        l->cap = cap;
    }
    dl_entry *d = malloc(sizeof(*d) + nlen + 1);
    if (!d)
        return -ENOMEM;
    d->is_dir = is_dir;
    d->have_size = have_size;
    d->size = have_size ? (uint64_t)st.st_size : 0;
    d->mtime = st.st_mtime;
    d->nlen = nlen;
    memcpy(d->name, name, nlen + 1);
    l->e[l->n++] = d;
    l->name_bytes += nlen;
    return 0;
}

/* Directories first, then by the key, then by name in byte order (strcmp: stable across
 * locales). DESC reverses the key only: ties stay in ascending name order, so equal sizes
 * read the same whichever way the column is sorted. Sorting by name reverses the name. A
 * directory has no size: sorted by size, directories tie and go by name. */
static int cmp_by(const void *a, const void *b, int flags)
{
    const dl_entry *x = *(const dl_entry *const *)a, *y = *(const dl_entry *const *)b;
    if (x->is_dir != y->is_dir)
        return y->is_dir - x->is_dir;
    int c = 0, desc = (flags & NK_HTTP_DIRLIST_DESC) != 0;
    if (flags & NK_HTTP_DIRLIST_SORT_SIZE)
        c = (x->size > y->size) - (x->size < y->size);
    else if (flags & NK_HTTP_DIRLIST_SORT_MTIME)
        c = (x->mtime > y->mtime) - (x->mtime < y->mtime);
    else
        return desc ? strcmp(y->name, x->name) : strcmp(x->name, y->name);
    if (c)
        return desc ? -c : c;
    return strcmp(x->name, y->name);
}

/* qsort takes no context: one comparator per order. */
static int cmp_name(const void *a, const void *b) { return cmp_by(a, b, 0); }
static int cmp_name_desc(const void *a, const void *b) { return cmp_by(a, b, NK_HTTP_DIRLIST_DESC); }
static int cmp_size(const void *a, const void *b) { return cmp_by(a, b, NK_HTTP_DIRLIST_SORT_SIZE); }
static int cmp_size_desc(const void *a, const void *b)
{
    return cmp_by(a, b, NK_HTTP_DIRLIST_SORT_SIZE | NK_HTTP_DIRLIST_DESC);
}
static int cmp_mtime(const void *a, const void *b) { return cmp_by(a, b, NK_HTTP_DIRLIST_SORT_MTIME); }
static int cmp_mtime_desc(const void *a, const void *b)
{
    return cmp_by(a, b, NK_HTTP_DIRLIST_SORT_MTIME | NK_HTTP_DIRLIST_DESC);
}

static int (*comparator(int flags))(const void *, const void *)
{
    int desc = (flags & NK_HTTP_DIRLIST_DESC) != 0;
    if (flags & NK_HTTP_DIRLIST_SORT_SIZE)
        return desc ? cmp_size_desc : cmp_size;
    if (flags & NK_HTTP_DIRLIST_SORT_MTIME)
        return desc ? cmp_mtime_desc : cmp_mtime;
    return desc ? cmp_name_desc : cmp_name;
}

/* Does query hold name=value as a whole parameter? The first parameter named name counts. */
static int query_value(const char *q, size_t len, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (end - i > nl && memcmp(q + i, name, nl) == 0 && q[i + nl] == '=')
            return end - i - nl - 1 == vl && memcmp(q + i + nl + 1, value, vl) == 0;
        i = end + 1;
    }
    return 0;
}

int nk_http_dirlist_sort_query(const char *query, size_t len)
{
    if (!query)
        return 0;
    int flags = 0;
    if (query_value(query, len, "sort", "size"))
        flags |= NK_HTTP_DIRLIST_SORT_SIZE;
    else if (query_value(query, len, "sort", "mtime"))
        flags |= NK_HTTP_DIRLIST_SORT_MTIME;
    if (query_value(query, len, "order", "desc"))
        flags |= NK_HTTP_DIRLIST_DESC;
    return flags;
}

static int read_dir(int dirfd, const nk_http_dirlist_opts *o, dl_list *l)
{
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    rewinddir(d);
    int r = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                r = -errno;
            break;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if ((r = list_add(l, dirfd, name, o)) < 0)
            break;
    }
    closedir(d);
    return r;
}

/* "1.2 KiB": binary units with one decimal, in integer arithmetic (printf's %f would follow
 * the locale's decimal point). Sizes under 1 KiB are exact: "512 B". */
static int human_size(nk_buf *out, uint64_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (u < 6 && size >= (UINT64_C(1) << (10 * (u + 1))))
        u++;
    if (u == 0)
        return nk_buf_printf(out, "%" PRIu64 " B", size);
    uint64_t unit = UINT64_C(1) << (10 * u);
    uint64_t whole = size / unit, rem = size % unit;
    uint64_t tenths = (rem * 10 + unit / 2) / unit; /* rem < unit <= 2^60: rem * 10 fits */
    if (tenths == 10) {
        whole++;
        tenths = 0;
    }
    if (whole == 1024 && u < 6) {
        u++;
        whole = 1;
    }
    return nk_buf_printf(out, "%" PRIu64 ".%" PRIu64 " %s", whole, tenths, units[u]);
}

/* UTC time as "2026-11-28 04:10" (html) or "2026-11-28T04:10:30Z" (json). */
static int put_time(nk_buf *out, time_t t, int json)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return json ? nk_buf_append_str(out, "null") : nk_buf_append_str(out, "-");
    if (json)
        return nk_buf_printf(out, "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", tm.tm_year + 1900,
                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return nk_buf_printf(out, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min);
}

static int render_json(const dl_list *l, size_t rows, nk_buf *out)
{
    int r = nk_buf_append_str(out, "[");
    for (size_t i = 0; i < rows && r >= 0; i++) {
        const dl_entry *e = l->e[i];
        if ((r = nk_buf_append_str(out, i ? ",\n{\"name\":\"" : "\n{\"name\":\"")) < 0 ||
            (r = nk_http_json_escape(e->name, e->nlen, out)) < 0 ||
            (r = nk_buf_append_str(out, e->is_dir ? "\",\"type\":\"dir\"" : "\",\"type\":\"file\"")) < 0)
            break;
        /* Every object has the same keys; directories, and files whose size could not be
         * learnt, have "size": null. */
        if (e->have_size)
            r = nk_buf_printf(out, ",\"size\":%" PRIu64, e->size);
        else
            r = nk_buf_append_str(out, ",\"size\":null");
        if (r < 0)
            break;
        if ((r = nk_buf_append_str(out, ",\"mtime\":")) < 0 || (r = put_time(out, e->mtime, 1)) < 0)
            break;
        r = nk_buf_append_str(out, "}");
    }
    if (r >= 0)
        r = nk_buf_append_str(out, rows ? "\n]\n" : "]\n");
    return r < 0 ? r : 0;
}

static const char html_head[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Index of ";

static const char html_style[] =
    "</title>\n"
    "<style>\n"
    "body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;margin:2rem auto;"
    "max-width:60rem;padding:0 1rem;color:#222;background:#fff}\n"
    "h1{font-size:1.4rem;font-weight:600;word-break:break-all}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{padding:.35rem .6rem;text-align:left;border-bottom:1px solid #eee}\n"
    "th{font-weight:600;color:#555;border-bottom:2px solid #ddd}\n"
    "td.s,th.s{text-align:right;white-space:nowrap}\n"
    "td.t{white-space:nowrap;color:#555;font-variant-numeric:tabular-nums}\n"
    "tr:hover td{background:#f6f8fa}\n"
    "a{color:#0550ae;text-decoration:none}a:hover{text-decoration:underline}\n"
    "p.note{color:#777}\n"
    /* Long names wrap anywhere rather than widen the page past a phone's screen. */
    "td:first-child{overflow-wrap:anywhere;word-break:break-word}\n"
    "@media (max-width:30rem){body{margin:1rem auto;padding:0 .5rem}"
    "th,td{padding:.35rem .3rem}td.t{white-space:normal}}\n"
    "@media (prefers-color-scheme:dark){body{color:#ddd;background:#111}"
    "th,td{border-color:#333}tr:hover td{background:#1c1c1c}a{color:#6cb6ff}}\n"
    /* the upload form (in the head even when there is none: a style element belongs here) */
    "form.upload{margin-top:1.5rem;padding:1rem;border:1px solid #ddd;border-radius:.5rem}\n"
    "form.upload .drop{display:block;padding:1.2rem;border:2px dashed #aaa;border-radius:.5rem;"
    "text-align:center;cursor:pointer}\n"
    "form.upload .drop.over{border-color:#0550ae;background:#eef4fc}\n"
    "form.upload .drop input{display:block;margin:.6rem auto 0;max-width:100%}\n"
    "form.upload .row{display:flex;flex-wrap:wrap;gap:.8rem;align-items:center;margin-top:.8rem}\n"
    "form.upload progress{flex:1;min-width:8rem}\n"
    "form.upload .limit{color:#777;margin:.6rem 0 0}\n"
    "form.mkdir{margin-top:.8rem}\n"
    "button.del{margin-left:.5rem;padding:0 .4rem;border:1px solid #ccc;border-radius:.3rem;"
    "background:none;color:#b42318;cursor:pointer;font-size:.8rem}\n"
    "@media (prefers-color-scheme:dark){form.upload,form.upload .drop{border-color:#444}"
    "form.upload .drop.over{background:#16233a}}\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>Index of ";

/* del: a delete button after an entry's link (a file's or a directory's). The page is the
 * same for every client, so it is there for everyone, hidden until the page's script shows it
 * (it works only through fetch); the server asks for credentials when the DELETE comes. */
static int render_row(const dl_entry *e, int del, nk_buf *out)
{
    int r;
    if ((r = nk_buf_append_str(out, "<tr><td><a href=\"")) < 0 ||
        (r = nk_http_url_escape(e->name, e->nlen, out)) < 0 ||
        (r = nk_buf_append_str(out, e->is_dir ? "/\">" : "\">")) < 0 ||
        (r = nk_http_html_escape(e->name, e->nlen, out)) < 0 ||
        (r = nk_buf_append_str(out, e->is_dir ? "/</a>" : "</a>")) < 0)
        return r;
    if (del &&
        (r = nk_buf_append_str(out, " <button type=\"button\" class=\"del\" title=\"Delete\" "
                                    "aria-label=\"Delete\" hidden>\xe2\x9c\x95</button>")) < 0)
        return r;
    if ((r = nk_buf_append_str(out, "</td>")) < 0)
        return r;
    if (e->have_size) {
        if ((r = nk_buf_printf(out, "<td class=\"s\" title=\"%" PRIu64 " bytes\">", e->size)) < 0 ||
            (r = human_size(out, e->size)) < 0 || (r = nk_buf_append_str(out, "</td>")) < 0)
            return r;
    } else if ((r = nk_buf_append_str(out, "<td class=\"s\">-</td>")) < 0) {
        return r;
    }
    if ((r = nk_buf_append_str(out, "<td class=\"t\">")) < 0 || (r = put_time(out, e->mtime, 0)) < 0)
        return r;
    return nk_buf_append_str(out, "</td></tr>\n");
}

/* The path as a breadcrumb: "/" and then each segment, every one a link to that directory.
 * Hrefs are absolute, each segment percent-encoded and the text HTML-escaped, as the rows'
 * links are; the last one is the page itself (aria-current). url_path is normalised, so it
 * starts and ends with "/" and has no empty or dot segment. */
static int render_breadcrumb(const char *url_path, nk_buf *out)
{
    int r;
    const char *end = url_path + strlen(url_path);
    if ((r = nk_buf_append_str(out, url_path[1] ? "<a href=\"/\">/</a>"
                                                : "<a href=\"/\" aria-current=\"page\">/</a>")) < 0)
        return r;
    for (const char *seg = url_path + 1; seg < end;) {
        const char *slash = memchr(seg, '/', (size_t)(end - seg));
        const char *next = slash ? slash + 1 : end;
        if ((r = nk_buf_append_str(out, "<a href=\"/")) < 0)
            return r;
        /* The href: every segment up to this one, each encoded on its own. */
        for (const char *s = url_path + 1; s < next;) {
            const char *e = memchr(s, '/', (size_t)(end - s));
            size_t n = e ? (size_t)(e - s) : (size_t)(end - s);
            if ((r = nk_http_url_escape(s, n, out)) < 0 || (r = nk_buf_append_str(out, "/")) < 0)
                return r;
            s += n + 1;
        }
        size_t n = slash ? (size_t)(slash - seg) : (size_t)(end - seg);
        if ((r = nk_buf_append_str(out, next >= end ? "\" aria-current=\"page\">" : "\">")) < 0 ||
            (r = nk_http_html_escape(seg, n, out)) < 0 || (r = nk_buf_append_str(out, "</a>/")) < 0)
            return r;
        seg = next;
    }
    return 0;
}

/* A column header: a link that sorts by this column, ascending, or the other way round when
 * the page is already sorted by it (then marked with aria-sort and an arrow). Plain links, so
 * sorting works without scripts; the query is relative: the same directory. */
static int render_header(int flags, int key, const char *attr, const char *label, nk_buf *out)
{
    static const char *const keys[] = {"name", "size", "mtime"};
    int cur = (flags & (NK_HTTP_DIRLIST_SORT_SIZE | NK_HTTP_DIRLIST_SORT_MTIME)) == key;
    int desc = (flags & NK_HTTP_DIRLIST_DESC) != 0;
    const char *k = keys[key == NK_HTTP_DIRLIST_SORT_SIZE ? 1 : key ? 2 : 0];
    return nk_buf_printf(out, "<th%s%s><a href=\"?sort=%s&amp;order=%s\">%s</a>%s</th>", attr,
                         !cur ? "" : desc ? " aria-sort=\"descending\"" : " aria-sort=\"ascending\"",
                         k, cur && !desc ? "desc" : "asc", label,
                         !cur ? "" : desc ? " \xe2\x96\xbc" : " \xe2\x96\xb2");
}

/* The upload form. Without scripts it is a plain form: the browser sends the chosen files as
 * multipart/form-data (RFC 7578) to this directory's URL (the action is relative: the page's
 * own URL) and follows the 303 back here. The inline script only improves it: files dropped on
 * the zone are put in the file input, and the form is sent by XMLHttpRequest so that a
 * progress bar can follow the upload; the answer (201, or an error page's text) is shown, and
 * the page reloaded on success. The page sets no Content-Security-Policy, so the inline
 * script needs no nonce; it uses no data from the request (nothing to escape). */
static const char upload_form_head[] =
    "<form method=\"post\" enctype=\"multipart/form-data\" action=\"\" class=\"upload\" "
    "id=\"upload\">\n"
    "<label class=\"drop\" id=\"drop\">Drop files here, or choose them:\n"
    "<input type=\"file\" name=\"file\" id=\"files\" multiple required></label>\n";

static const char upload_form_tail[] =
    "<div class=\"row\">\n"
    "<label><input type=\"checkbox\" name=\"overwrite\" value=\"1\"> overwrite existing "
    "files</label>\n"
    "<button type=\"submit\">Upload</button>\n"
    "<progress id=\"progress\" max=\"100\" value=\"0\" hidden></progress>\n"
    "<output id=\"status\" for=\"files\"></output>\n"
    "</div>\n"
    "</form>\n"
    "<script>\n"
    "(function(){\n"
    "var f=document.getElementById('upload'),d=document.getElementById('drop'),"
    "i=document.getElementById('files'),p=document.getElementById('progress'),"
    "s=document.getElementById('status');\n"
    "if(!window.FormData||!window.XMLHttpRequest)return;\n"
    "function stop(e){e.preventDefault();e.stopPropagation();}\n"
    /* the whole page takes the drop: a file let go beside the zone would otherwise make the
     * browser leave the page to show it */
    "['dragenter','dragover'].forEach(function(t){document.addEventListener(t,function(e){stop(e);"
    "d.classList.add('over');});});\n"
    "['dragleave','drop'].forEach(function(t){document.addEventListener(t,function(e){stop(e);"
    "d.classList.remove('over');});});\n"
    "document.addEventListener('drop',function(e){if(e.dataTransfer&&e.dataTransfer.files.length){"
    "i.files=e.dataTransfer.files;s.textContent=i.files.length+' file(s) ready';}});\n"
    "f.addEventListener('submit',function(e){\n"
    "e.preventDefault();\n"
    "var x=new XMLHttpRequest();\n"
    "x.open('POST',location.pathname);\n"
    "x.setRequestHeader('Accept','text/plain');\n"
    "p.hidden=false;p.value=0;s.textContent='Uploading\\u2026';\n"
    "x.upload.onprogress=function(ev){if(ev.lengthComputable)"
    "p.value=Math.floor(ev.loaded*100/ev.total);};\n"
    "x.onload=function(){\n"
    "if(x.status>=200&&x.status<300){p.value=100;s.textContent='Uploaded.';"
    "setTimeout(function(){location.reload();},300);}\n"
    /* the error page's explanation, as text (DOMParser runs no script, textContent marks
     * nothing up) */
    "else{var m=new DOMParser().parseFromString(x.responseText,'text/html').querySelector('p');"
    "s.textContent=x.status+' '+x.statusText+(m?': '+m.textContent:'');}};\n"
    "x.onerror=function(){s.textContent='The upload failed.';};\n"
    "x.send(new FormData(f));\n"
    "});\n"
    /* Delete buttons: DELETE through fetch, which carries the credentials the browser holds for
     * this site (or makes it ask for them on the 401); the row goes once the server agrees. A
     * directory that is not empty is refused (409) with the number of entries below it
     * (deldir.c writes "is not empty: N entr..."): asked again, naming that number, the page
     * sends ?recursive=1. Any other refusal shows the server's explanation. */
    "function del(b,a,q){\n"
    "fetch(a.href+q,{method:'DELETE',credentials:'same-origin'}).then(function(r){\n"
    "if(r.ok){var tr=b.closest('tr');tr.parentNode.removeChild(tr);"
    "s.textContent='Deleted '+a.textContent+'.';return;}\n"
    "return r.text().then(function(t){\n"
    "var m=new DOMParser().parseFromString(t,'text/html').querySelector('p'),"
    "n=m&&/is not empty: (\\d+) entr/.exec(m.textContent);\n"
    "if(r.status===409&&n&&!q){s.textContent='';"
    "if(confirm(a.textContent+' holds '+n[1]+(n[1]==='1'?' entry':' entries')+"
    "'. Delete it with everything in it?'))del(b,a,'?recursive=1');return;}\n"
    "s.textContent=r.status+' '+r.statusText+': could not delete '+a.textContent+"
    "(m?': '+m.textContent:'.');});\n"
    "}).catch(function(){s.textContent='Could not delete '+a.textContent+'.';});\n"
    "}\n"
    "Array.prototype.forEach.call(document.querySelectorAll('button.del'),function(b){\n"
    "b.hidden=false;\n"
    "b.addEventListener('click',function(){\n"
    "var a=b.previousElementSibling;\n"
    "if(confirm('Delete '+a.textContent+'?'))del(b,a,'');\n"
    "});\n"
    "});\n"
    "})();\n"
    "</script>\n";

static int render_upload(uint64_t max_upload, nk_buf *out)
{
    int r;
    if ((r = nk_buf_append_str(out, upload_form_head)) < 0)
        return r;
    if (max_upload && max_upload != UINT64_MAX &&
        ((r = nk_buf_printf(out, "<p class=\"limit\">Up to <span title=\"%" PRIu64 " bytes\">",
                            max_upload)) < 0 ||
         (r = human_size(out, max_upload)) < 0 ||
         (r = nk_buf_append_str(out, "</span> per upload, all files together.</p>\n")) < 0))
        return r;
    return nk_buf_append_str(out, upload_form_tail);
}

static int render_html(const dl_list *l, size_t rows, const char *url_path, int flags,
                       uint64_t max_upload, nk_buf *out)
{
    size_t plen = strlen(url_path);
    int r;
    if ((r = nk_buf_append_str(out, html_head)) < 0 ||
        (r = nk_http_html_escape(url_path, plen, out)) < 0 ||
        (r = nk_buf_append_str(out, html_style)) < 0 || (r = render_breadcrumb(url_path, out)) < 0 ||
        (r = nk_buf_append_str(out, "</h1>\n")) < 0)
        return r;
    if ((flags & NK_HTTP_DIRLIST_ARCHIVES) &&
        (r = nk_buf_append_str(out, "<p class=\"dl\">Download this directory: <a "
                                    "href=\"?download=tar\">.tar</a> <a "
                                    "href=\"?download=tar.gz\">.tar.gz</a></p>\n")) < 0)
        return r;
    if ((r = nk_buf_append_str(out, "<table>\n<thead><tr>")) < 0 ||
        (r = render_header(flags, 0, "", "Name", out)) < 0 ||
        (r = render_header(flags, NK_HTTP_DIRLIST_SORT_SIZE, " class=\"s\"", "Size", out)) < 0 ||
        (r = render_header(flags, NK_HTTP_DIRLIST_SORT_MTIME, "", "Modified (UTC)", out)) < 0 ||
        (r = nk_buf_append_str(out, "</tr></thead>\n<tbody>\n")) < 0)
        return r;
    if (strcmp(url_path, "/") != 0 &&
        (r = nk_buf_append_str(out, "<tr><td><a href=\"../\">../</a></td>"
                                    "<td class=\"s\"></td><td class=\"t\"></td></tr>\n")) < 0)
        return r;
    for (size_t i = 0; i < rows; i++) {
        if ((r = render_row(l->e[i], (flags & NK_HTTP_DIRLIST_UPLOAD) != 0, out)) < 0)
            return r;
    }
    if ((r = nk_buf_append_str(out, "</tbody>\n</table>\n")) < 0)
        return r;
    size_t omitted = l->omitted + (l->n - rows);
    if (omitted &&
        (r = nk_buf_printf(out, "<p class=\"note\">This list was truncated: %zu more entries not "
                                "shown.</p>\n", omitted)) < 0)
        return r;
    if ((flags & NK_HTTP_DIRLIST_UPLOAD) && (r = render_upload(max_upload, out)) < 0)
        return r;
    /* "New folder": a plain form (no script), answered 303 back to this page. */
    if ((flags & NK_HTTP_DIRLIST_UPLOAD) && (flags & NK_HTTP_DIRLIST_MKDIR) &&
        (r = nk_buf_append_str(out, "<form method=\"post\" enctype=\"multipart/form-data\" "
                                    "action=\"\" class=\"mkdir\">\n<label>New folder: <input "
                                    "type=\"text\" name=\"mkdir\" required maxlength=\"255\" "
                                    "pattern=\"[^/]+\"></label>\n<button type=\"submit\">"
                                    "Create</button>\n</form>\n")) < 0)
        return r;
    r = nk_buf_append_str(out, "</body>\n</html>\n");
    return r < 0 ? r : 0;
}

int nk_http_dirlist(int dirfd, const char *url_path, int json, int show_dotfiles, struct nk_buf *out)
{
    return nk_http_dirlist_ex(dirfd, url_path, json, show_dotfiles, 0, out);
}

int nk_http_dirlist_ex(int dirfd, const char *url_path, int json, int show_dotfiles, int flags,
                       struct nk_buf *out)
{
    nk_http_dirlist_opts o = {.json = json, .show_dotfiles = show_dotfiles, .flags = flags};
    return nk_http_dirlist_render(dirfd, url_path, &o, out);
}

int nk_http_dirlist_render(int dirfd, const char *url_path, const nk_http_dirlist_opts *o,
                           struct nk_buf *out)
{
    dl_list l = {0};
    int r;

    if (dirfd < 0 || !url_path || !o || !out)
        return -EINVAL;
    r = read_dir(dirfd, o, &l);
    if (r == 0) {
        if (l.n > 1)
            qsort(l.e, l.n, sizeof(dl_entry *), comparator(o->flags));
        size_t max = o->max_rows ? o->max_rows : NK_HTTP_DIRLIST_MAX_ROWS;
        size_t rows = l.n < max ? l.n : max;
        r = o->json ? render_json(&l, rows, out) : render_html(&l, rows, url_path, o->flags, o->max_upload, out);
    }
    list_free(&l);
    return r;
}
