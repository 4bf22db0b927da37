;;; moe-lsp.el --- moe-lsp AI completions with eglot or lsp-mode  -*- lexical-binding: t; -*-

;; Load this file from your init file (or copy its forms there):
;;
;;   (setq moe-lsp-command '("/path/to/moe-lsp/.venv/bin/moe-lsp" "connect"))
;;   (load "/path/to/moe-lsp/editors/emacs/moe-lsp.el")
;;
;; `moe-lsp connect' reaches your shared server (one model for every editor window, on a
;; private unix socket) and starts it in the background when none answers; it exits after
;; 10 minutes with no editor connected.  Engine settings are its flags, e.g.
;;   '("moe-lsp" "connect" "--kv-cache-gib" "2" "--idle-exit" "60")
;; and apply only when `connect' starts the server: a running shared server keeps its model
;; until it exits idle.  For a server of this Emacs's own (its own model, engine settings
;; in initializationOptions), use "serve" instead of "connect".
;;
;; eglot (built into Emacs 29+; on Emacs 28 the `eglot' package, Debian `elpa-eglot'):
;;   M-x eglot in a Python buffer, or (add-hook 'python-mode-hook #'eglot-ensure).
;;   eglot runs one server per major mode, so moe-lsp replaces your usual Python server
;;   in eglot.
;; lsp-mode: M-x lsp.  moe-lsp is an add-on and runs beside your usual Python server.
;;
;; The AI completion is an item of the completion list ("moe-lsp AI completion"): with
;; eglot C-M-i (`completion-at-point'), company or corfu; with lsp-mode company or corfu
;; (lsp-mode 8.0's plain C-M-i inserts only the item's label, the first line).
;; The model loads for a while after the server starts; its state is shown in the echo area
;; and kept in `moe-lsp-status'.  Until it is "ready" the list is empty.

;;; Code:

(defvar moe-lsp-command '("moe-lsp" "connect")
  "The program that starts the moe-lsp server, and its arguments.
\"connect\" (the default): the user's shared server, started on first use; engine
settings are flags after it.  \"serve\": a server of this Emacs's own.
Set it before this file is loaded.")

(defvar moe-lsp-status nil
  "The engine state last reported by moe-lsp: \"loading\", \"ready\" or \"failed\".")

(defun moe-lsp--on-status (state message)
  "Remember STATE from a `moe/status' notification and show MESSAGE."
  (setq moe-lsp-status state)
  (message "moe-lsp: %s" (if (and (stringp message) (not (equal message "")))
                              message
                            state)))

;;; eglot

(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs
               `((python-mode python-ts-mode) . ,moe-lsp-command))
  (cl-defmethod eglot-handle-notification
    (_server (_method (eql moe/status)) &key state message &allow-other-keys)
    (moe-lsp--on-status state message)))

;;; lsp-mode
;; lsp-mode versions that ship lsp-inline-completion.el (newer than Debian's 8.0.0) can
;; also show the completion as ghost text: M-x lsp-inline-completion-display.

(with-eval-after-load 'lsp-mode
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection (lambda () moe-lsp-command))
    :activation-fn (lsp-activate-on "python")
    :add-on? t
    :notification-handlers
    (let ((handlers (make-hash-table :test #'equal)))
      (puthash "moe/status"
               (lambda (_workspace params)
                 (moe-lsp--on-status (lsp-get params :state) (lsp-get params :message)))
               handlers)
      handlers)
    :server-id 'moe-lsp)))

(provide 'moe-lsp)
;;; moe-lsp.el ends here
