//! A compiled Rego policy and its one question: is this input allowed? Evaluated
//! in-process by regorus, with opa-docker-authz's semantics (its `main.go`,
//! `evaluatePolicyFile`): the query (default `data.docker.authz.allow`) must be `true`;
//! undefined or `false` is a deny with "request rejected by administrative policy"; a
//! value that is not a boolean is an error ("administrative policy decision invalid").
//!
//! Compiling means parsing the file and evaluating the query once against an empty
//! input, which is where regorus reports unsafe variables and unknown functions: a
//! policy that compiles is one that can decide. Each evaluation works on a clone of the
//! compiled engine (regorus evaluates through `&mut`), so requests never wait for one
//! another, and is cut off after a time limit.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;

/// opa-docker-authz's default query (its `-allowPath` flag).
pub const DEFAULT_QUERY: &str = "data.docker.authz.allow";

/// The deny message of opa-docker-authz, word for word (its `AuthZReq`).
pub const REJECTED: &str = "request rejected by administrative policy";

/// Why a policy file did not compile; the previous policy stays in force.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The file could not be read.
    #[error("cannot read policy {path}: {reason}")]
    Read {
        /// The policy file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// regorus refused it (syntax, unsafe variable, unknown builtin, …): its report,
    /// with the file, line and column.
    #[error(
        "policy {path} does not compile: {reason}{hint}",
        hint = if *v0_likely {
            " (no `if` anywhere: if it is Rego v0, start opaauthz with --v0-compatible)"
        } else {
            ""
        }
    )]
    Rego {
        /// The policy file.
        path: String,
        /// regorus's error.
        reason: String,
        /// Whether the text looks like Rego v0 (rules without `if`).
        v0_likely: bool,
    },
}

/// What a policy said about one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The query is `true`.
    Allow,
    /// The query is `false`.
    False,
    /// The query is undefined (no rule matched, and no `default`).
    Undefined,
    /// The evaluation failed or produced something that is not a boolean.
    Error(String),
}

/// How policies are compiled: the query, the Rego version, the time limit.
#[derive(Debug, Clone)]
pub struct Options {
    /// The query whose value is the decision, e.g. `data.docker.authz.allow`.
    pub query: String,
    /// Parse Rego v0 (no `if`, `contains`), as OPA's `--v0-compatible`.
    pub v0: bool,
    /// How long one evaluation may run.
    pub limit: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            query: DEFAULT_QUERY.into(),
            v0: false,
            limit: Duration::from_secs(2),
        }
    }
}

/// opa-docker-authz's `normalizeAllowPath` (policy-file mode): `/docker/authz/allow`
/// is `data.docker.authz.allow`; a query is kept as given.
pub fn normalize_query(path: &str) -> String {
    match path.strip_prefix('/') {
        Some(rest) => format!("data.{}", rest.replace('/', ".")),
        None => path.to_owned(),
    }
}

/// A compiled policy.
#[derive(Clone)]
pub struct Policy {
    engine: regorus::Engine,
    query: String,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Reads and compiles the policy file `path`.
    pub fn load(path: &Path, options: &Options) -> Result<Self, CompileError> {
        let text = std::fs::read_to_string(path).map_err(|e| CompileError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::compile(&path.display().to_string(), text, options)
    }

    /// Compiles `text` (named `name` in errors).
    pub fn compile(name: &str, text: String, options: &Options) -> Result<Self, CompileError> {
        let rego = |reason: String, v0_likely: bool| CompileError::Rego {
            path: name.to_owned(),
            reason,
            v0_likely,
        };
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(options.v0);
        // As OPA: a builtin given the wrong type is undefined, not an error.
        engine.set_strict_builtin_errors(false);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: options.limit,
            check_interval: NonZeroU32::MIN,
        });
        // A policy without a single `if` that does not parse is likely Rego v0 (a
        // trial parse as v0 would do, but regorus prints warnings on stderr then).
        let v0_likely = !options.v0 && !has_word(&text, "if");
        if let Err(e) = engine.add_policy(name.to_owned(), text) {
            return Err(rego(report(e), v0_likely));
        }
        // The analysis (unsafe variables, unknown functions) runs at the first
        // evaluation: do it now, with an input that defines nothing.
        engine.set_input(regorus::Value::new_object());
        if let Err(e) = engine.eval_query(options.query.clone(), false) {
            return Err(rego(report(e), false));
        }
        Ok(Self {
            engine,
            query: options.query.clone(),
        })
    }

    /// The query this policy answers.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Evaluates the query with `input` (blocking: CPU only, bounded by the time
    /// limit).
    pub fn evaluate(&self, input: serde_json::Value) -> Verdict {
        let mut engine = self.engine.clone();
        engine.set_input(regorus::Value::from(input));
        let results = match engine.eval_query(self.query.clone(), false) {
            Ok(results) => results,
            Err(e) => return Verdict::Error(report(e)),
        };
        // As opa-docker-authz: no result is undefined; the first expression's value
        // must be a boolean.
        let Some(first) = results.result.first() else {
            return Verdict::Undefined;
        };
        match first.expressions.first().map(|e| &e.value) {
            None | Some(regorus::Value::Undefined) => Verdict::Undefined,
            Some(regorus::Value::Bool(true)) => Verdict::Allow,
            Some(regorus::Value::Bool(false)) => Verdict::False,
            Some(_) => Verdict::Error("administrative policy decision invalid".into()),
        }
    }
}

/// Whether `word` occurs in `text` as a word of its own.
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == word)
}

/// regorus's error report (source excerpt and message) on one line each.
fn report(e: impl std::fmt::Display) -> String {
    format!("{e:#}").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(text: &str) -> Result<Policy, CompileError> {
        Policy::compile("test.rego", text.into(), &Options::default())
    }

    #[test]
    fn true_allows_false_and_undefined_do_not() {
        let policy = compile(
            "package docker.authz\n\nallow if input.Method == \"GET\"\n\
             allow := false if input.Method == \"PUT\"\n",
        )
        .unwrap();
        assert_eq!(policy.evaluate(json!({"Method": "GET"})), Verdict::Allow);
        assert_eq!(policy.evaluate(json!({"Method": "PUT"})), Verdict::False);
        assert_eq!(
            policy.evaluate(json!({"Method": "POST"})),
            Verdict::Undefined
        );
    }

    #[test]
    fn a_decision_that_is_not_a_boolean_is_an_error() {
        let policy = compile("package docker.authz\n\nallow := \"yes\"\n").unwrap();
        assert_eq!(
            policy.evaluate(json!({})),
            Verdict::Error("administrative policy decision invalid".into())
        );
    }

    #[test]
    fn a_policy_without_the_rule_is_undefined_hence_denies() {
        let policy = compile("package other\n\nallow := true\n").unwrap();
        assert_eq!(policy.evaluate(json!({})), Verdict::Undefined);
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = compile("package docker.authz\n\nallow if {\n").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("policy test.rego does not compile: --> test.rego:4:1"),
            "{message}"
        );
        assert!(!message.contains("--v0-compatible"), "{message}");
    }

    #[test]
    fn unsafe_variables_and_unknown_functions_fail_at_compile_time() {
        let err = compile("package docker.authz\n\nallow if { x == 1 }\n").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("error: use of undefined variable `x` is unsafe"),
            "{err}"
        );
        let err = compile("package docker.authz\n\nallow if nosuch(input.x)\n").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("error: could not find function nosuch"),
            "{err}"
        );
    }

    #[test]
    fn v0_policies_need_the_v0_flag() {
        let v0 = "package docker.authz\n\nallow { input.Method == \"GET\" }\n";
        let err = compile(v0).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "(no `if` anywhere: if it is Rego v0, start opaauthz with --v0-compatible)"
            ),
            "{err}"
        );
        let options = Options {
            v0: true,
            ..Options::default()
        };
        let policy = Policy::compile("v0.rego", v0.into(), &options).unwrap();
        assert_eq!(policy.evaluate(json!({"Method": "GET"})), Verdict::Allow);
    }

    #[test]
    fn a_runaway_policy_is_cut_off() {
        let options = Options {
            limit: Duration::from_millis(50),
            ..Options::default()
        };
        let slow = "package docker.authz\n\nallow if {\n  some i in numbers.range(1, input.n)\n  \
                    some j in numbers.range(1, input.n)\n  i * j < 0\n}\n";
        let policy = Policy::compile("slow.rego", slow.into(), &options).unwrap();
        let started = std::time::Instant::now();
        let verdict = policy.evaluate(json!({"n": 100_000}));
        let Verdict::Error(e) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(e.starts_with("execution exceeded time limit"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn builtins_given_the_wrong_type_are_undefined_as_in_opa() {
        let policy = compile(
            "package docker.authz\n\ndefault allow := false\n\n\
             allow if not startswith(input.Body, \"x\")\n",
        )
        .unwrap();
        assert_eq!(policy.evaluate(json!({"Body": null})), Verdict::Allow);
    }

    #[test]
    fn iterating_null_with_some_in_is_an_error_in_regorus() {
        // OPA finds `some x in null` undefined; regorus 0.14 fails the evaluation, so
        // the request is denied with this reason. `input.BindMounts[_]` (undefined on
        // null in both) is the portable spelling.
        let policy = compile(
            "package docker.authz\n\ndefault allow := false\n\n\
             allow if not root\n\nroot if {\n  some m in input.BindMounts\n  m.Resolved == \"/\"\n}\n",
        )
        .unwrap();
        let Verdict::Error(e) = policy.evaluate(json!({"BindMounts": null})) else {
            panic!("regorus iterates null now: use `some m in` in policies/default.rego")
        };
        assert!(
            e.ends_with("error: `some .. in collection` expects array/set/object. Got `null`"),
            "{e}"
        );
    }

    #[test]
    fn missing_files_say_so() {
        let err =
            Policy::load(Path::new("/nonexistent/authz.rego"), &Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read policy /nonexistent/authz.rego: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn allow_paths_are_normalized_as_opa_docker_authz_does() {
        assert_eq!(
            normalize_query("/docker/authz/allow"),
            "data.docker.authz.allow"
        );
        assert_eq!(normalize_query("data.policy.rule"), "data.policy.rule");
    }
}
