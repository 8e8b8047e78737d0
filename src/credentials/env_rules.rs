//! The env keys no credential may carry, whoever writes it: each one lets its value choose code
//! that a stdio child runs on the gateway host (loaders, interpreters, package managers, shells,
//! search paths) or where the child's traffic and trust go (proxies, CA bundles). The target's own
//! `env`, which only admins define alongside the command itself, is not bound by this list.

/// Why a key is refused: the rule that matched, for messages that tell the writer what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeniedKey {
    /// The pattern that matched, e.g. `LD_*` or `PATH`.
    pub rule: &'static str,
    /// What the variable controls.
    pub controls: &'static str,
}

/// Prefixes (matched case-insensitively) and what the variables behind them control.
const PREFIXES: &[(&str, &str, &str)] = &[
    (
        "LD_",
        "LD_*",
        "the dynamic loader (preloaded libraries, search paths)",
    ),
    ("DYLD_", "DYLD_*", "the dynamic loader"),
    ("GLIBC_", "GLIBC_*", "the C library's tunables"),
    ("MALLOC_", "MALLOC_*", "the C library's allocator"),
    ("REFLOW_", "REFLOW_*", "the gateway's own settings"),
    (
        "NODE_",
        "NODE_*",
        "the Node.js runtime (NODE_OPTIONS --require runs code)",
    ),
    (
        "NPM_CONFIG_",
        "NPM_CONFIG_*",
        "npm and npx (registry, scripts, node options)",
    ),
    ("YARN_", "YARN_*", "yarn"),
    ("PNPM_", "PNPM_*", "pnpm"),
    ("BUN_", "BUN_*", "the Bun runtime"),
    ("DENO_", "DENO_*", "the Deno runtime"),
    (
        "PYTHON",
        "PYTHON*",
        "the Python interpreter (PYTHONPATH, PYTHONSTARTUP)",
    ),
    ("PIP_", "PIP_*", "pip (package index)"),
    ("UV_", "UV_*", "uv and uvx (package index, interpreter)"),
    ("PERL", "PERL*", "the Perl interpreter (PERL5OPT, PERL5LIB)"),
    ("RUBY", "RUBY*", "the Ruby interpreter (RUBYOPT, RUBYLIB)"),
    ("GEM_", "GEM_*", "RubyGems"),
    ("BUNDLE_", "BUNDLE_*", "Bundler"),
    (
        "JAVA_",
        "JAVA_*",
        "the Java runtime (JAVA_TOOL_OPTIONS, JAVA_HOME)",
    ),
    ("_JAVA_", "_JAVA_*", "the Java runtime"),
    ("JDK_", "JDK_*", "the Java launcher"),
    ("DOTNET_", "DOTNET_*", "the .NET runtime (startup hooks)"),
    ("CORECLR_", "CORECLR_*", "the .NET runtime (profilers)"),
    ("COR_", "COR_*", "the .NET runtime (profilers)"),
    ("LUA_", "LUA_*", "the Lua interpreter"),
    ("GIT_", "GIT_*", "git (GIT_SSH_COMMAND, GIT_EXEC_PATH)"),
    ("XDG_", "XDG_*", "where programs read their configuration"),
    ("BASH_", "BASH_*", "bash (BASH_ENV runs a file at start)"),
];

/// Exact names (matched case-insensitively).
const EXACT: &[(&str, &str)] = &[
    ("PATH", "where programs are looked up"),
    ("HOME", "where programs read their configuration"),
    ("SHELL", "which shell programs start"),
    ("TMPDIR", "where temporary files go"),
    ("TMP", "where temporary files go"),
    ("TEMP", "where temporary files go"),
    ("ENV", "a file POSIX shells run at start"),
    ("SHELLOPTS", "shell options"),
    ("BASHOPTS", "shell options"),
    ("PS4", "shell tracing (runs commands)"),
    ("IFS", "shell word splitting"),
    ("CDPATH", "shell directory lookup"),
    ("PROMPT_COMMAND", "a command the shell runs"),
    ("GLOBIGNORE", "shell globbing"),
    ("CLASSPATH", "where Java loads classes"),
    ("GCONV_PATH", "the C library's charset modules"),
    ("LOCPATH", "the C library's locale files"),
    ("NLSPATH", "the C library's message catalogs"),
    ("HOSTALIASES", "host name resolution"),
    ("RES_OPTIONS", "host name resolution"),
    ("LOCALDOMAIN", "host name resolution"),
    ("GOFLAGS", "the go command (-toolexec runs code)"),
    ("GOPROXY", "where Go modules come from"),
    ("GOPATH", "where Go programs are found"),
    ("GOROOT", "which Go toolchain runs"),
    ("GOTOOLCHAIN", "which Go toolchain runs"),
    ("GOENV", "the go command's configuration file"),
    ("ELECTRON_RUN_AS_NODE", "Electron"),
    ("PHPRC", "the PHP interpreter's configuration"),
    ("PHP_INI_SCAN_DIR", "the PHP interpreter's configuration"),
    ("TCLLIBPATH", "where Tcl loads code"),
    ("EDITOR", "a program other programs start"),
    ("VISUAL", "a program other programs start"),
    ("PAGER", "a program other programs start"),
    ("BROWSER", "a program other programs start"),
    ("SSH_ASKPASS", "a program ssh starts"),
    ("SUDO_ASKPASS", "a program sudo starts"),
    ("OPENSSL_CONF", "OpenSSL's configuration (loads engines)"),
    ("OPENSSL_ENGINES", "OpenSSL's engines"),
    ("SSL_CERT_FILE", "which TLS certificates are trusted"),
    ("SSL_CERT_DIR", "which TLS certificates are trusted"),
    ("REQUESTS_CA_BUNDLE", "which TLS certificates are trusted"),
    ("CURL_CA_BUNDLE", "which TLS certificates are trusted"),
    ("HTTP_PROXY", "where the child's traffic goes"),
    ("HTTPS_PROXY", "where the child's traffic goes"),
    ("ALL_PROXY", "where the child's traffic goes"),
    ("NO_PROXY", "where the child's traffic goes"),
    ("FTP_PROXY", "where the child's traffic goes"),
];

/// The rule that forbids `key` in any credential, if one does. Case does not matter: a key
/// that differs only in case is refused as well (some platforms and tools fold it).
pub fn denied_env_key(key: &str) -> Option<DeniedKey> {
    let upper = key.to_ascii_uppercase();
    if let Some((rule, controls)) = EXACT.iter().find(|(name, _)| upper == *name) {
        return Some(DeniedKey { rule, controls });
    }
    PREFIXES
        .iter()
        .find(|(prefix, _, _)| upper.starts_with(prefix))
        .map(|(_, rule, controls)| DeniedKey { rule, controls })
}

impl DeniedKey {
    /// One sentence for an error or a warning about `key`.
    pub fn explain(&self, key: &str) -> String {
        format!(
            "{key:?} matches the deny-list rule {} ({}); no credential may set it, at any scope \
             and by anyone, because its value could choose code or routes for the upstream; an \
             admin who needs it puts it in the target's own env",
            self.rule, self.controls
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_interpreter_and_path_variables_are_denied_in_any_case() {
        for key in [
            "LD_PRELOAD",
            "ld_preload",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "NODE_OPTIONS",
            "NODE_PATH",
            "npm_config_registry",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "PERL5OPT",
            "RUBYOPT",
            "BASH_ENV",
            "ENV",
            "JAVA_TOOL_OPTIONS",
            "PATH",
            "Path",
            "HOME",
            "SHELL",
            "TMPDIR",
            "REFLOW_DATA_DIR",
            "GIT_SSH_COMMAND",
            "HTTPS_PROXY",
            "https_proxy",
            "GLIBC_TUNABLES",
            "UV_INDEX_URL",
        ] {
            assert!(denied_env_key(key).is_some(), "{key} must be denied");
        }
    }

    #[test]
    fn ordinary_credential_names_pass() {
        for key in [
            "GITHUB_TOKEN",
            "API_KEY",
            "AUTH_TOKEN",
            "BASE_URL",
            "SLACK_BOT_TOKEN",
            "PATH_PREFIX",
            "HOMEPAGE_URL",
            "ENVIRONMENT",
            "CORPORATE_ID",
            "NODEJS_TOKEN",
        ] {
            assert_eq!(denied_env_key(key), None, "{key} must be allowed");
        }
    }

    #[test]
    fn the_explanation_names_the_key_and_the_rule() {
        let d = denied_env_key("NODE_OPTIONS").unwrap();
        let text = d.explain("NODE_OPTIONS");
        assert!(
            text.contains("\"NODE_OPTIONS\"") && text.contains("NODE_*"),
            "{text}"
        );
    }
}
