/** Which languages get completions. Pure. */

export interface LanguageRules {
  /** `moeLsp.enabled`. */
  enabled: boolean;
  /** `moeLsp.enabledLanguages`: empty means every language. */
  enabledLanguages: string[];
  /** `moeLsp.disabledLanguages`: wins over enabledLanguages. */
  disabledLanguages: string[];
}

/**
 * VS Code language ids the server has a language spec for (prompts/languages.py): the
 * extension activates on these (package.json activationEvents). Once active it completes any
 * enabled language; the others get plain-text prompts.
 */
export const SUPPORTED_LANGUAGES = [
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
  "java",
  "c",
  "cpp",
] as const;

const norm = (ids: string[] | undefined) => (ids ?? []).map((s) => s.trim().toLowerCase()).filter(Boolean);

export function isLanguageEnabled(languageId: string, rules: LanguageRules): boolean {
  if (!rules.enabled) return false;
  const id = languageId.toLowerCase();
  if (norm(rules.disabledLanguages).includes(id)) return false;
  const only = norm(rules.enabledLanguages);
  return only.length === 0 || only.includes(id);
}

/**
 * New language lists after flipping `languageId`, changing as little as possible:
 * disabling adds it to disabledLanguages; enabling removes it from disabledLanguages and,
 * when an allow-list exists, adds it there.
 */
export function toggleLanguage(
  languageId: string,
  rules: LanguageRules,
): { enabledLanguages: string[]; disabledLanguages: string[]; nowEnabled: boolean } {
  const id = languageId.toLowerCase();
  const enabledLanguages = [...(rules.enabledLanguages ?? [])];
  let disabledLanguages = [...(rules.disabledLanguages ?? [])];
  const currently = isLanguageEnabled(id, { ...rules, enabled: true });
  if (currently) {
    disabledLanguages.push(id);
  } else {
    disabledLanguages = disabledLanguages.filter((l) => l.trim().toLowerCase() !== id);
    if (norm(enabledLanguages).length > 0 && !norm(enabledLanguages).includes(id)) {
      enabledLanguages.push(id);
    }
  }
  return { enabledLanguages, disabledLanguages, nowEnabled: !currently };
}
