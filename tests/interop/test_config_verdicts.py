"""Differential test: ``lifeline config check`` must reach keepalived's ``-t`` verdict.

For every config (Debian's samples, the project's examples, our corpus) both
tools run in the same throwaway namespace (only ``lo`` and ``eth0``), so host
checks see the same machine.  Nothing is recorded: keepalived's answer is taken
live each run.  Two things must agree:

(a) the verdict: exit status zero or non-zero;
(b) when keepalived rejects the file, every ``(file, line)`` it reports is among
    lifeline's diagnostics.  Records without a line number are compared only
    through (a).  When keepalived exits 0, its lines are informational (it
    prints "Config files missing" for a plain ``include`` of a missing file and
    still exits 0); lifeline must then exit 0, which its CLI only does when it
    prints nothing, so (a) already says "we say nothing when keepalived is happy".

Corpus conventions (``tests/interop/configs``): files whose name starts with
``_`` are include fragments, not run on their own; a header line
``# interop: config-id=ID[,ID...]`` runs the file once per id, passing ``-i ID``
to keepalived and ``--config-id ID`` to lifeline.  Files that mention
``smtp_server`` also run in a namespace where ``mail.example.net`` does not
resolve, to cover keepalived's "Invalid smtp server".

A header ``# interop: deviation=TEXT`` marks a file where lifeline deliberately
differs because keepalived's own answer is an accident: an include loop, which
keepalived follows until it runs out of file descriptors (printing thousands of
lines, and for a self-include still exiting 0), or a ``net_namespace`` that
does not exist, which keepalived cannot enter and so checks nothing and exits
0.  There lifeline must reject the file with a diagnostic containing TEXT;
keepalived is still run, so the test notices if a keepalived upgrade changes
its answer into ours.

Compat lines (``FILE:LINE: warning: KEYWORD is not supported by lifeline``)
are lifeline's own and never change its exit status, so the verdicts compared
here are unaffected by them.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

import pytest

from shared.lab.daemon import keepalived_binary
from shared.lab.netns import Lab, Namespace, run_in_namespace
from tests.interop.keepalived_check import Record, Verdict, run_keepalived_check

pytestmark = [pytest.mark.interop, pytest.mark.root]

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = Path(__file__).resolve().parent / "configs"
SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")
EXAMPLES_DIR = REPO_ROOT / "docs" / "examples"
EXPECTED_SAMPLES = 25
LIFELINE_TIMEOUT = 60.0

MAIL_HOSTS = {"mail.example.net": "192.0.2.25"}
RESOLVES, NO_NAMES = "hosts", "nohosts"

_DEVIATION_RE = re.compile(r"^\s*[#!]\s*interop:\s*deviation=(?P<text>.+?)\s*$", re.MULTILINE)
_DIRECTIVE_RE = re.compile(r"^\s*[#!]\s*interop:\s*config-id=(?P<ids>\S+)", re.MULTILINE)
_LIFELINE_RE = re.compile(r"^(?P<file>.+?):(?:(?P<line>\d+):)? (?:error|warning): (?P<message>.*)$")


@dataclass(frozen=True)
class Case:
    """One run: a source file, where it came from, the config id and the resolver variant."""

    source: Path
    origin: str
    config_id: str | None = None
    names: str = RESOLVES

    @property
    def id(self) -> str:
        parts = [self.origin, self.source.name, self.config_id and f"id={self.config_id}", self.names]
        return "/".join(p for p in parts if p)


def _config_ids(path: Path) -> list[str | None]:
    """Config ids named in the file's ``# interop: config-id=`` header (default: none given)."""
    ids = [i for m in _DIRECTIVE_RE.finditer(path.read_text(errors="replace")) for i in m["ids"].split(",")]
    return list(ids) if ids else [None]


def _variants(path: Path, origin: str) -> Iterator[Case]:
    mentions_smtp = "smtp_server" in path.read_text(errors="replace")
    for config_id in _config_ids(path):
        yield Case(path, origin, config_id, RESOLVES)
        if mentions_smtp:
            yield Case(path, origin, config_id, NO_NAMES)


def collect_cases() -> list[Case]:
    """Debian's samples, the repository's examples (docs/examples) and the corpus."""
    cases: list[Case] = []
    for path in sorted(SAMPLES_DIR.glob("keepalived.conf.*")):
        cases += _variants(path, "sample")
    for path in sorted(EXAMPLES_DIR.glob("*.conf")):
        cases += _variants(path, "example")
    for path in sorted(CORPUS_DIR.glob("*.conf")):
        if not path.name.startswith("_"):
            cases += _variants(path, "corpus")
    return cases


CASES = collect_cases()


@pytest.fixture(scope="module")
def check_hosts(netns_session: None) -> Iterator[dict[str, Namespace]]:
    """Two look-alike hosts (lo + eth0): one resolves mail.example.net, one resolves nothing."""
    with Lab() as lab:
        hosts = {RESOLVES: lab.host("r"), NO_NAMES: lab.host("n")}
        hosts[RESOLVES].set_hosts(MAIL_HOSTS)
        hosts[NO_NAMES].set_hosts({})
        yield hosts


def stage(case: Case, tmp_path: Path) -> Path:
    """Copy the config (the whole corpus, for its includes) into tmp_path; both tools read the copy."""
    if case.origin == "corpus":
        shutil.copytree(CORPUS_DIR, tmp_path / "configs")
        return tmp_path / "configs" / case.source.name
    target = tmp_path / case.source.name
    shutil.copyfile(case.source, target)
    return target


def lifeline_argv(conf: Path, config_id: str | None) -> list[str]:
    """The venv's console script next to this interpreter (no hard-coded checkout path)."""
    argv = [str(Path(sys.executable).with_name("lifeline")), "config", "check", str(conf)]
    return argv + (["--config-id", config_id] if config_id is not None else [])


def parse_lifeline_output(text: str) -> tuple[Record, ...]:
    """``FILE:LINE: error|warning: message`` lines; anything else is kept as a line-less record."""
    records = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        match = _LIFELINE_RE.match(raw)
        if match:
            records.append(Record(match["file"], int(match["line"] or 0), match["message"]))
        else:
            records.append(Record("", 0, raw.strip()))
    return tuple(records)


def run_lifeline_check(ns: Namespace, conf: Path, config_id: str | None) -> Verdict:
    proc = run_in_namespace(ns, lifeline_argv(conf, config_id), LIFELINE_TIMEOUT, cwd=conf.parent)
    output = proc.stderr + proc.stdout
    return Verdict(proc.returncode, parse_lifeline_output(output), output)


def same_file(reported: str, ours: str, base: Path) -> bool:
    """Does keepalived's file name denote our file?

    keepalived names an included file as the ``include`` argument, relative to
    the *including* file's directory, which its output does not say; so a
    relative name matches when it is a trailing part of our resolved path.
    """
    our_path = (base / ours).resolve()
    if PurePath(reported).is_absolute():
        return Path(reported).resolve() == our_path
    parts = PurePath(reported).parts
    if ".." in parts:
        return (base / reported).resolve() == our_path
    parts = tuple(p for p in parts if p != ".")
    return our_path.parts[-len(parts) :] == parts


def missing_lines(theirs: Verdict, ours: Verdict, base: Path) -> list[Record]:
    """keepalived's numbered records with no lifeline diagnostic at the same file and line.

    Only a rejecting keepalived's lines count; see the module docstring for why.
    """
    if theirs.clean:
        return []
    numbered = [r for r in ours.records if r.line]
    return [
        rec
        for rec in theirs.records
        if rec.line and not any(o.line == rec.line and same_file(rec.file, o.file, base) for o in numbered)
    ]


def _block(title: str, verdict: Verdict) -> list[str]:
    lines = [f"{title} (exit {verdict.returncode}):"]
    lines += [f"    {rec}" for rec in verdict.records] or ["    (nothing)"]
    return lines


def explain(case: Case, theirs: Verdict, ours: Verdict, missing: list[Record]) -> str:
    """A failure message a parser author can act on without re-running anything."""
    lines = [f"lifeline disagrees with keepalived -t on {case.id}"]
    if theirs.clean != ours.clean:
        lines.append(f"  verdict: keepalived {'clean' if theirs.clean else 'REJECTS'}, "
                     f"lifeline {'clean' if ours.clean else 'REJECTS'}")  # fmt: skip
    if missing:
        lines.append("  keepalived lines lifeline does not report:")
        lines += [f"    {rec}" for rec in missing]
    lines += ["  " + line for line in _block("keepalived said", theirs) + _block("lifeline said", ours)]
    return "\n".join(lines)


def test_keepalived_and_samples_are_installed() -> None:
    """Without keepalived there is no reference: fail (CI installs it), never skip."""
    keepalived_binary()
    samples = list(SAMPLES_DIR.glob("keepalived.conf.*"))
    assert len(samples) >= EXPECTED_SAMPLES, f"expected {EXPECTED_SAMPLES} samples in {SAMPLES_DIR}"
    assert Path(sys.executable).with_name("lifeline").exists(), (
        "lifeline console script not installed in venv"
    )


def test_examples_directory_present() -> None:
    assert len(list(EXAMPLES_DIR.glob("*.conf"))) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_verdict_matches_keepalived(case: Case, check_hosts: dict[str, Namespace], tmp_path: Path) -> None:
    conf = stage(case, tmp_path)
    ns = check_hosts[case.names]
    theirs = run_keepalived_check(ns, conf, case.config_id)
    ours = run_lifeline_check(ns, conf, case.config_id)
    assert "Traceback (most recent call last)" not in ours.output, f"lifeline crashed:\n{ours.output}"
    deviation = _DEVIATION_RE.search(case.source.read_text(errors="replace"))
    if deviation is not None:
        assert not ours.clean and deviation["text"] in ours.output, explain(case, theirs, ours, [])
        return
    missing = missing_lines(theirs, ours, conf.parent)
    if theirs.clean != ours.clean or missing:
        pytest.fail(explain(case, theirs, ours, missing))
