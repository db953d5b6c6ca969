"""Every option the command accepts is documented: the long options of every getopt table in
cli/ (found in the source, mapped to the command that parses with it through the command tables
and the call graph) appear in that command's --help and in its section of docs/netkit.1, which
also has examples for every command; `netkit help CMD` prints what `netkit CMD --help` does."""
import glob
import importlib.util
import os
import re
import subprocess
import unittest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_spec = importlib.util.spec_from_file_location("man_options",
                                               os.path.join(ROOT, "scripts", "man-options.py"))
man_options = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(man_options)
CLI = os.path.join(ROOT, "cli")
MAN = os.path.join(ROOT, "docs", "netkit.1")

FUNC_RE = re.compile(r"^(?:static\s+)?(?:const\s+)?(?:unsigned\s+)?\w+[\s*]+(\w+)\(([^;{]*?)\)\s*\n\{",
                     re.M)
OPT_TABLE_RE = re.compile(r"struct option (\w+)\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
CMD_TABLE_RE = re.compile(r"cli_cmd (\w+)\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
CMD_ENTRY_RE = re.compile(r'\{"([a-z]+)",\s*"[^"]*",\s*(\w+)\}')
ONE_LINE_FUNC_RE = re.compile(r"^(?:static\s+)?int (\w+)\([^;{)]*\)\s*\{.*\}$", re.M)
DISPATCH_RE = re.compile(r'cli_dispatch\((?:"(\w+)"|NULL),\s*(\w+)')


def functions(text):
    """(name, start, end) of each function defined at the left margin."""
    out = []
    for m in FUNC_RE.finditer(text):
        end = text.find("\n}\n", m.end())
        out.append((m.group(1), m.start(), end if end >= 0 else len(text)))
    for m in ONE_LINE_FUNC_RE.finditer(text):
        out.append((m.group(1), m.start(), m.end()))
    return out


def source_options():
    """{command: set of long options} from the getopt tables in cli/ and its folders."""
    files = {}
    for p in sorted(glob.glob(os.path.join(CLI, "**", "*.c"), recursive=True)):
        with open(p) as f:
            files[p] = f.read()
    funcs = {}  # name -> body
    file_of = {}  # name -> the file defining it
    for path, text in files.items():
        for name, start, end in functions(text):
            funcs[name] = text[start:end]
            file_of[name] = path
    # Command tables, by file and name (several files call theirs "verbs").
    tables = {}
    for path, text in files.items():
        for m in CMD_TABLE_RE.finditer(text):
            tables[(path, m.group(1))] = CMD_ENTRY_RE.findall(m.group(2))
    dispatches = {}  # dispatcher function -> the table it dispatches on
    for name, body in funcs.items():
        for m in DISPATCH_RE.finditer(body):
            dispatches[name] = (file_of[name], m.group(2))
    leaf = {}  # function -> "http serve"

    def walk(table, prefix):
        for word, fn in tables.get(table, []):
            full = (prefix + " " + word) if prefix else word
            if fn in dispatches:
                walk(dispatches[fn], full)
            else:
                leaf[fn] = full
    walk((os.path.join(CLI, "netkit.c"), "commands"), None)
    result = {}
    for path, text in files.items():
        fdefs = functions(text)
        for m in OPT_TABLE_RE.finditer(text):
            names = re.findall(r'\{"([a-z0-9-]+)",', m.group(2))
            inside = [f for f, s, e in fdefs if s <= m.start() < e]
            users = inside or [f for f, s, e in fdefs if m.group(1) in text[s:e]]
            cmds, seen, todo = set(), set(), list(users)
            while todo:
                f = todo.pop()
                if f in seen:
                    continue
                seen.add(f)
                if f in leaf:
                    cmds.add(leaf[f])
                    continue
                todo += [g for g, body in funcs.items() if re.search(r"\b%s\(" % f, body)
                         and g != f]
            if not cmds:
                raise AssertionError("%s: option table %s reaches no command"
                                     % (os.path.basename(path), m.group(1)))
            for c in cmds:
                result.setdefault(c, set()).update(names)
    return result, sorted(set(leaf.values()))


def man_text():
    """The man page as plain text: font escapes and \\- removed."""
    with open(MAN) as f:
        t = f.read()
    t = t.replace("\\-", "-").replace("\\(dq", '"').replace("\\e", "\\")
    t = re.sub(r"\\f[BIRP]", "", t)
    return t


def man_sections(text):
    """{command: its text} from the '.SS "command"' subsections."""
    out = {}
    parts = re.split(r'(?m)^\.SS\s+"?([a-z ]+?)"?\s*$', text)
    for i in range(1, len(parts) - 1, 2):
        out[parts[i].strip()] = parts[i + 1].split("\n.SH ")[0]
    return out


class ManPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.options, cls.commands = source_options()
        cls.sections = man_sections(man_text())

    def help_of(self, cmd, more=True):
        r = harness.run(cmd.split() + ["--help"], timeout=10)
        self.assertEqual(r.returncode, 0, "%s --help: %r" % (cmd, r.stderr))
        text = r.stdout.decode()
        if more and "--dgram --help" in text:
            # the datagram mode of `unix listen|connect` has its own help
            r = harness.run(cmd.split() + ["--dgram", "--help"], timeout=10)
            text += r.stdout.decode()
        return text

    def test_found_the_commands(self):
        # the walk must see every command, else the checks below would pass on nothing
        for cmd in ("http serve", "http get", "tcp listen", "tcp connect", "ping", "sniff",
                    "chat join", "file recv", "lookup host", "bench echo"):
            self.assertIn(cmd, self.commands)

    def test_every_option_in_help(self):
        missing = []
        for cmd, opts in sorted(self.options.items()):
            text = self.help_of(cmd)
            missing += ["%s: --%s" % (cmd, o) for o in sorted(opts)
                        if not re.search(r"--%s\b(?!-)" % re.escape(o), text)]
        self.assertEqual(missing, [], "options missing from --help")

    def test_every_option_in_man_page(self):
        missing = []
        for cmd, opts in sorted(self.options.items()):
            if cmd not in self.sections:
                missing.append("%s: no '.SS \"%s\"' section" % (cmd, cmd))
                continue
            text = self.sections[cmd]
            missing += ["%s: --%s" % (cmd, o) for o in sorted(opts)
                        if not re.search(r"--%s\b(?!-)" % re.escape(o), text)]
        self.assertEqual(missing, [], "options missing from docs/netkit.1")

    def test_every_command_has_examples(self):
        missing = []
        for cmd in self.commands:
            text = self.sections.get(cmd, "")
            m = re.search(r"(?s)Examples:(.*)", text)
            if not m or ("netkit " + cmd) not in m.group(1):
                missing.append(cmd)
        self.assertEqual(missing, [], "commands without examples in docs/netkit.1")

    def test_help_command(self):
        for cmd in ("http serve", "ping", "lookup host", "tcp"):
            r = harness.run(["help"] + cmd.split(), timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.decode(), self.help_of(cmd, more=False))
        r = harness.run(["help"], timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("http", r.stdout.decode())
        r = harness.run(["help", "frobnicate"], timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.decode().splitlines()[0], "netkit: unknown command 'frobnicate'")


class OptionTables(unittest.TestCase):
    """Commands whose options are a table (cli/opt.h): the man page's list is the table's."""

    @classmethod
    def setUpClass(cls):
        cls.blocks = man_options.generated(harness.NETKIT)
        with open(MAN) as f:
            cls.page = f.read()

    def test_tables_found(self):
        self.assertIn("echo serve", self.blocks)
        self.assertIn("--backend", self.blocks["echo serve"].replace("\\-", "-"))
        self.assertIn("--handshake", self.blocks["sniff"].replace("\\-", "-"))
        self.assertIn("--upload", self.blocks["http serve"].replace("\\-", "-"))

    def test_man_page_lists_are_the_tables(self):
        marked = {c: b for c, b in self.blocks.items()
                  if '.\\" options: %s\n' % c in self.page}
        self.assertIn("echo serve", marked)
        new, problems = man_options.rewrite(self.page, marked)
        self.assertEqual([p for p in problems if "no '.\\\" options" not in p], [])
        self.assertTrue(new == self.page, "docs/netkit.1 differs from the option tables: run "
                        "`make man-options`")
        # a table whose list is not marked in the page yet: its options are there all the same
        sections = man_sections(man_text())
        missing = []
        for cmd in sorted(set(self.blocks) - set(marked)):
            names = [n.replace("\\-", "-")
                     for n in re.findall(r"\\fB\\-\\-([a-z0-9\\-]+)\\fR", self.blocks[cmd])]
            text = sections.get(cmd, "")
            missing += ["%s: --%s" % (cmd, n) for n in names
                        if n != "help" and not re.search(r"--%s\b(?!-)" % re.escape(n), text)]
        self.assertEqual(missing, [], "options missing from docs/netkit.1")

    def test_help_lists_every_table_option(self):
        missing = []
        for cmd, block in sorted(self.blocks.items()):
            names = re.findall(r"\\fB\\-\\-([a-z0-9\\-]+)\\fR", block)
            self.assertIn("help", [n.replace("\\-", "-") for n in names], cmd)
            r = harness.run(cmd.split() + ["--help"], timeout=10)
            self.assertEqual(r.returncode, 0, "%s --help: %r" % (cmd, r.stderr))
            text = r.stdout.decode()
            missing += ["%s: --%s" % (cmd, n.replace("\\-", "-")) for n in names
                        if "--" + n.replace("\\-", "-") not in text]
        self.assertEqual(missing, [])

    def test_a_changed_table_is_caught(self):
        # the check above can fail: a block that differs from the table is reported
        cmd = "echo serve"
        changed = dict(self.blocks)
        changed[cmd] = self.blocks[cmd].replace(".TP\n", ".TP\nextra\n", 1)
        new, _ = man_options.rewrite(self.page, changed)
        self.assertNotEqual(new, self.page)


if __name__ == "__main__":
    unittest.main()
