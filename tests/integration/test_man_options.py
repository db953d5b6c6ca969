"""Every option the command accepts is documented, from one source: each command's option table
(cli/opt.h) is its parser, the options of its --help and, through `netkit help --roff` and
scripts/man-options.py, the option list of its section in docs/netkit.1, which must be exactly
what the table gives. Every command (found through the command tables in cli/) has such a
table, a section and examples; `netkit help CMD` prints what `netkit CMD --help` does."""
import glob
import importlib.util
import os
import re
import unittest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_spec = importlib.util.spec_from_file_location("man_options",
                                               os.path.join(ROOT, "scripts", "man-options.py"))
man_options = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(man_options)
CLI = os.path.join(ROOT, "cli")
MAN = os.path.join(ROOT, "docs", "netkit.1")

CMD_TABLE_RE = re.compile(r"cli_cmd (\w+)\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
CMD_ENTRY_RE = re.compile(r'\{"([a-z]+)",\s*"[^"]*",\s*(\w+)\}')
FUNC_RE = re.compile(r"^(?:static\s+)?int (\w+)\(int argc, char \*\*argv\)\s*\n\{(.*?)\n\}",
                     re.M | re.S)
DISPATCH_RE = re.compile(r'cli_dispatch\((?:"(\w+)"|NULL),\s*(\w+)')
LONG_RE = re.compile(r"\\fB\\-\\-([a-z0-9\\-]+)\\fR")


def source_commands():
    """Every command's full name ("http serve"), from the command tables of cli/ and the
    functions that dispatch on them."""
    tables, dispatches = {}, {}
    for path in sorted(glob.glob(os.path.join(CLI, "**", "*.c"), recursive=True)):
        with open(path) as f:
            text = f.read()
        for m in CMD_TABLE_RE.finditer(text):
            tables[m.group(1) + "@" + path] = CMD_ENTRY_RE.findall(m.group(2))
        for m in FUNC_RE.finditer(text):
            d = DISPATCH_RE.search(m.group(2))
            if d:
                dispatches[m.group(1)] = d.group(2) + "@" + path
    out = []

    def walk(table, prefix):
        for word, fn in tables.get(table, []):
            full = (prefix + " " + word) if prefix else word
            if fn in dispatches:
                walk(dispatches[fn], full)
            else:
                out.append(full)
    walk("commands@" + os.path.join(CLI, "netkit.c"), None)
    return sorted(out)


def long_names(block):
    return [n.replace("\\-", "-") for n in LONG_RE.findall(block)]


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
        cls.commands = source_commands()
        cls.blocks = man_options.generated(harness.NETKIT)
        with open(MAN) as f:
            cls.page = f.read()
        cls.sections = man_sections(cls.page)

    def help_of(self, cmd):
        r = harness.run(cmd.split() + ["--help"], timeout=10)
        self.assertEqual(r.returncode, 0, "%s --help: %r" % (cmd, r.stderr))
        return r.stdout.decode()

    def test_found_the_commands(self):
        # the walk must see every command, else the checks below would pass on nothing
        for cmd in ("http serve", "http get", "tcp listen", "tcp connect", "ping", "sniff",
                    "chat join", "file recv", "lookup host", "bench echo", "echo serve"):
            self.assertIn(cmd, self.commands)
        self.assertIn("upload", long_names(self.blocks["http serve"]))
        self.assertIn("handshake", long_names(self.blocks["sniff"]))

    def test_every_command_has_a_table(self):
        self.assertEqual(sorted(set(self.commands) - set(self.blocks)), [],
                         "commands without an option table (cli/opt.h)")
        self.assertEqual(sorted(set(self.blocks) - set(self.commands)), [],
                         "option tables of no command")

    def test_man_page_lists_are_the_tables(self):
        new, problems = man_options.rewrite(self.page, self.blocks)
        self.assertEqual(problems, [])
        self.assertTrue(new == self.page, "docs/netkit.1 differs from the option tables: run "
                        "`make man-options`")

    def test_a_changed_table_is_caught(self):
        # the check above can fail: a block that differs from the table is reported
        changed = dict(self.blocks)
        changed["echo serve"] = self.blocks["echo serve"].replace(".TP\n", ".TP\nextra\n", 1)
        new, _ = man_options.rewrite(self.page, changed)
        self.assertNotEqual(new, self.page)
        del changed["echo serve"]
        _, problems = man_options.rewrite(self.page, changed)
        self.assertTrue(problems)

    def test_help_lists_every_option(self):
        missing = []
        for cmd, block in sorted(self.blocks.items()):
            names = long_names(block)
            self.assertIn("help", names, cmd)
            text = self.help_of(cmd)
            missing += ["%s: --%s" % (cmd, n) for n in names
                        if not re.search(r"--%s\b(?!-)" % re.escape(n), text)]
        self.assertEqual(missing, [], "options missing from --help")

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
            self.assertEqual(r.stdout.decode(), self.help_of(cmd))
        r = harness.run(["help"], timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("http", r.stdout.decode())
        r = harness.run(["help", "frobnicate"], timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.decode().splitlines()[0], "netkit: unknown command 'frobnicate'")


if __name__ == "__main__":
    unittest.main()
