# ruff: noqa: E501  (the embedded Emacs Lisp)
"""Emacs in batch mode with editors/emacs/moe-lsp.el, against the real server, engine and model.

eglot (and lsp-mode, where installed) start `moe-lsp connect` (the config's default) on a Python
file, in a private socket folder per test, so `connect` starts a shared server of the test's
own (stopped at the end); once the server reports `moe/status` ready, the client's completion-at-point function is asked for candidates
at the cursor, the AI item is completed into the buffer, and the buffer is checked.
Debian: `apt-get install emacs-nox elpa-eglot elpa-lsp-mode` (Emacs 28 has no built-in eglot).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_editors_support import shared_server_space

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).resolve().parents[2] / "editors" / "emacs" / "moe-lsp.el"
TIMEOUT_S = 240
SOURCE = "def add(a, b):\n    return a\n"

# What a user's init does (package.el activates the installed packages, then the config is
# loaded), plus the test harness: a result plist written as JSON, waits through the event loop.
PRELUDE = r""";;; -*- lexical-binding: t; -*-
(require 'json)
(require 'package)
(setq package-user-dir %(elpa)s)
(package-initialize)
(setq moe-lsp-command %(cmd)s)
(load %(config)s nil t)

(defvar moe-test-result nil)
(defvar moe-test-start (float-time))
(defun moe-test-put (k v) (setq moe-test-result (plist-put moe-test-result k v)))
(defun moe-test-version (pkg)
  (let ((d (cadr (assq pkg package-alist)))) (and d (package-version-join (package-desc-version d)))))
(defun moe-test-finish (err)
  (moe-test-put :error err)
  (moe-test-put :status moe-lsp-status)
  (with-temp-file %(out)s (insert (json-encode moe-test-result)))
  (let ((t0 (float-time)))
    (ignore-errors (moe-test-shutdown))
    (moe-test-put :shutdown_s (- (float-time) t0)))
  (with-temp-file %(out)s (insert (json-encode moe-test-result)))
  (kill-emacs 0))
(defun moe-test-wait (name pred)
  (moe-test-put :step name)
  (while (and (not (funcall pred)) (< (- (float-time) moe-test-start) %(timeout)d))
    (accept-process-output nil 0.1))
  (unless (funcall pred) (moe-test-finish (format "timeout in step %%s" name))))

(defun moe-test-complete (capf item-of how)
  "Ask CAPF for candidates at point until one comes, then complete the first one.
HOW is `region': what C-M-i does with the answer (`completion-in-region'), or `select':
what company and corfu do when the item is chosen (insert it, call the exit function)."
  (let ((tries 0) cands capf-result)
    (while (and (null cands) (< tries 20))
      (setq tries (1+ tries))
      (setq capf-result (funcall capf))
      (pcase capf-result
        (`(,beg ,end ,table . ,_)
         (setq cands (all-completions (buffer-substring-no-properties beg end) table))))
      (unless cands (accept-process-output nil 0.5)))
    (moe-test-put :tries tries)
    (unless cands (moe-test-finish "no completion candidates"))
    (pcase-let* ((`(,beg ,end ,table . ,props) capf-result)
                 (exit (plist-get props :exit-function))
                 (props (plist-put (copy-sequence props) :exit-function
                                   (lambda (c status)
                                     (moe-test-put :exit_status (symbol-name status))
                                     (funcall exit c status))))
                 (cand (car cands)))
      (moe-test-put :candidates (vconcat (mapcar #'substring-no-properties cands)))
      (moe-test-put :annotation (funcall (plist-get props :annotation-function) cand))
      (moe-test-put :new_text (funcall item-of cand))
      (pcase how
        ('region
         (let ((completion-extra-properties props))
           (moe-test-put :completed
                         (and (completion-in-region beg end table (plist-get props :predicate)) t))))
        ('select
         (delete-region beg end)
         (goto-char beg)
         (insert cand)
         (funcall (plist-get props :exit-function) cand 'finished)
         (moe-test-put :completed t))))
    (moe-test-put :new_lines
                  (vconcat (split-string (buffer-substring-no-properties (point-min) (point-max)) "\n")))))

(defvar moe-test-accepted nil "A function: the `accepted' count in the server's moe/stats.")
(defun moe-test-run (start server-names capf item-of how)
  (condition-case err
      (progn
        (find-file %(file)s)
        (moe-test-put :major_mode (symbol-name major-mode))
        (funcall start)
        (moe-test-wait "server" (lambda () (funcall server-names)))
        (moe-test-put :servers (vconcat (funcall server-names)))
        (moe-test-wait "ready" (lambda () (member moe-lsp-status '("ready" "failed"))))
        (unless (equal moe-lsp-status "ready") (moe-test-finish "engine failed"))
        (moe-test-put :ready_s (- (float-time) moe-test-start))
        (goto-char (point-min)) (forward-line 1) (end-of-line)
        (moe-test-put :old_line (buffer-substring-no-properties (line-beginning-position) (point)))
        (moe-test-complete capf item-of how)
        ;; The server's count of accepted completions (the item's `moe-lsp.accepted` command).
        (let ((deadline (+ (float-time) 3)) accepted)
          (while (progn (setq accepted (funcall moe-test-accepted))
                        (and (eql accepted 0) (< (float-time) deadline)))
            (accept-process-output nil 0.2))
          (moe-test-put :accepted accepted))
        (moe-test-finish nil))
    (error (moe-test-finish (error-message-string err)))))
"""

EGLOT = r"""
(require 'eglot)
(moe-test-put :client (concat "eglot " (or (moe-test-version 'eglot) "built-in")))
(defun moe-test-shutdown () (eglot-shutdown (eglot-current-server) nil 30))
(setq moe-test-accepted
      (lambda () (plist-get (plist-get (jsonrpc-request (eglot-current-server) :moe/stats (make-hash-table)) :counts) :accepted)))
(moe-test-run
 (lambda () (call-interactively #'eglot))            ; M-x eglot
 (lambda () (let ((s (eglot-current-server))) (and s (list (plist-get (eglot--server-info s) :name)))))
 #'eglot-completion-at-point
 (lambda (c) (plist-get (plist-get (get-text-property 0 'eglot--lsp-item c) :textEdit) :newText))
 'region)                                            ; C-M-i
"""

LSP_MODE = r"""
(setq lsp-session-file (expand-file-name "lsp-session" package-user-dir)
      lsp-auto-guess-root t                   ; the project root is the folder with .git
      lsp-enable-file-watchers nil
      lsp-restart 'ignore)
(require 'lsp-mode)
(moe-test-put :client (concat "lsp-mode " (moe-test-version 'lsp-mode)))
(defun moe-test-shutdown () (lsp-workspace-shutdown (car (lsp-workspaces))))
(setq moe-test-accepted
      (lambda () (lsp-get (lsp-get (lsp-request "moe/stats" (make-hash-table)) :counts) :accepted)))
(moe-test-run
 #'lsp                                               ; M-x lsp
 (lambda () (mapcar (lambda (w) (symbol-name (lsp--workspace-server-id w))) (lsp-workspaces)))
 #'lsp-completion-at-point
 (lambda (c) (lsp-get (lsp-get (get-text-property 0 'lsp-completion-item c) :textEdit) :newText))
 ;; As company/corfu: lsp-mode 8.0's table never reports an exact match, so plain C-M-i
 ;; inserts the item's label and never runs its exit function (no text edit, no command).
 'select)
"""


def el(s: str) -> str:
    """An Emacs Lisp string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_command() -> list[str]:
    """The `moe-lsp connect` a user puts in the config (the installed script, else the module),
    with a short idle exit so that the shared server it starts ends soon after the test."""
    script = Path(sys.executable).parent / "moe-lsp"
    if script.is_file() and os.access(script, os.X_OK):
        command = [str(script)]
    else:
        command = [sys.executable, "-m", "moe_lsp.lsp.cli"]
    return [*command, "connect", "--idle-exit", "5", "--max-model-len", "2048"]


def has_package(emacs: str, feature: str, elpa: Path) -> bool:
    """Whether `feature` loads in Emacs after package.el activates what is installed."""
    probe = f'(progn (require \'package) (setq package-user-dir {el(str(elpa))}) (package-initialize) (princ (if (locate-library {el(feature)}) "yes" "no")))'
    r = subprocess.run(
        [emacs, "--batch", "--eval", probe], capture_output=True, text=True, timeout=60
    )
    return r.stdout.strip().endswith("yes")


def kill_tagged(tag: str) -> None:
    """End what is left of this test's processes (the server and its engine)."""
    for p in psutil.process_iter():
        try:
            if p.environ().get("MOE_LSP_EMACS_TEST") == tag:
                p.kill()
        except (psutil.Error, OSError):
            pass


def run_emacs(tmp_path: Path, feature: str, body: str) -> dict:
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip("emacs not found (Debian: apt-get install emacs-nox elpa-eglot elpa-lsp-mode)")
    elpa = tmp_path / "elpa"  # an empty user package dir: only the system's packages count
    elpa.mkdir()
    if not has_package(emacs, feature, elpa):
        pytest.skip(
            f"Emacs package {feature} not installed (Debian: apt-get install elpa-{feature})"
        )
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    src = project / "calc.py"
    src.write_text(SOURCE)
    out = tmp_path / "result.json"
    driver = tmp_path / "driver.el"
    driver.write_text(
        PRELUDE
        % {
            "elpa": el(str(elpa)),
            "cmd": "'(" + " ".join(el(a) for a in server_command()) + ")",
            "config": el(str(CONFIG)),
            "out": el(str(out)),
            "file": el(str(src)),
            "timeout": TIMEOUT_S,
        }
        + body
    )
    tag = uuid.uuid4().hex
    with shared_server_space() as space:
        proc = subprocess.Popen(
            # --batch reads no init file; site-start (Debian's load-path for packages) is kept.
            [emacs, "--batch", "-l", str(driver)],
            cwd=project,
            env=dict(os.environ, MOE_LSP_EMACS_TEST=tag, **space.env()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S + 60)
        except subprocess.TimeoutExpired:
            output = b""
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        server_log = space.log_tail(10**7)
    kill_tagged(tag)
    log = output.decode(errors="replace")
    assert out.exists(), (
        f"emacs wrote no result; output:\n{log[-3000:]}\nserver.log:\n{server_log[-3000:]}"
    )
    r = json.loads(out.read_text())
    print(f"emacs {feature} result:", json.dumps(r))
    assert r.get("error") is None, (r, log[-3000:], server_log[-3000:])
    # Through `connect`: one shared server started on the private socket, with the flag given
    # after `connect` reaching its engine.
    assert server_log.count("listening on unix:" + str(space.socket)) == 1, server_log[-3000:]
    assert "'max_model_len': 2048" in server_log, server_log[-3000:]
    return r


def check_completed(r: dict) -> None:
    assert r["major_mode"] == "python-mode", r
    assert r["servers"] == ["moe-lsp"], r
    assert r["status"] == "ready", r
    assert r["old_line"] == "    return a", r
    # The AI item: the typed word "a" plus a non-empty completion from the real model.
    new_text = r["new_text"]
    assert new_text.startswith("a") and new_text[1:].strip(), r
    assert r["candidates"] and new_text.startswith(r["candidates"][0].removesuffix("...")), r
    assert "moe-lsp AI completion" in r["annotation"], r
    # Completed into the buffer: the item's text edit replaced "a" with the whole completion.
    assert r["completed"] and r["exit_status"] == "finished", r
    assert "\n".join(r["new_lines"]) == "def add(a, b):\n    return " + new_text + "\n", r


def test_eglot_completion_in_batch_emacs(tmp_path: Path) -> None:
    r = run_emacs(tmp_path, "eglot", EGLOT)
    check_completed(r)
    assert isinstance(r["accepted"], int), r  # eglot 1.9 does not run an item's command: 0


def test_lsp_mode_completion_in_batch_emacs(tmp_path: Path) -> None:
    r = run_emacs(tmp_path, "lsp-mode", LSP_MODE)
    check_completed(r)
    assert r["accepted"] == 1, r  # lsp-mode runs the item's command after completing it
