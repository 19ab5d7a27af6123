//! One private dockerd shared by every trial of a libtest-mimic test binary: started
//! once (unless only listing), handed to each trial, stopped after the run. Under
//! CI=true (or DPS_REQUIRE_DOCKERD=1) a dockerd that cannot start fails every trial
//! that needs it; otherwise those trials are reported as ignored.

use std::sync::{Arc, Mutex};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use libtest_mimic::{Arguments, Failed, Trial};

/// Imports the busybox test image once per run, on first use.
pub struct ImageOnce {
    name: &'static str,
    state: Mutex<Option<Result<(), String>>>,
}

impl ImageOnce {
    /// Imports it into `d` the first time; later calls give the first result.
    pub fn ensure(&self, d: &Dockerd) -> Result<(), Failed> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let result =
            state.get_or_insert_with(|| d.import_busybox(self.name).map_err(|e| e.to_string()));
        result.clone().map_err(Failed::from)
    }
}

/// A trial that needs the daemon.
pub type DockerdTest = fn(&Dockerd, &ImageOnce) -> Result<(), Failed>;

/// A trial that needs no daemon.
pub type PlainTest = fn() -> Result<(), Failed>;

/// Runs `plain` and, with one daemon shared by all of them, `with_dockerd`; exits
/// with the run's status.
pub fn run_trials(
    label: &'static str,
    image: &'static str,
    plain: Vec<(&str, PlainTest)>,
    with_dockerd: Vec<(&str, DockerdTest)>,
) -> ! {
    let args = Arguments::from_args();
    let shared = SharedDockerd::start(&args, label, image);
    // The trials that need the daemon first: they are the long ones (images, plugins,
    // containers), and libtest-mimic starts trials in the order given. Started last,
    // they ran after the short ones, one after another on a 2-core machine (push: 143 s
    // with its two daemon trials last).
    let mut trials: Vec<Trial> = with_dockerd
        .into_iter()
        .map(|(name, test)| shared.trial(name, test))
        .collect();
    trials.extend(
        plain
            .into_iter()
            .map(|(name, test)| Trial::test(name, test)),
    );
    let conclusion = libtest_mimic::run(&args, trials);
    shared.stop();
    conclusion.exit()
}

/// The shared daemon of one test binary.
pub struct SharedDockerd {
    label: &'static str,
    daemon: Result<Arc<Dockerd>, String>,
    required: bool,
    listing: bool,
    image: Arc<ImageOnce>,
}

impl SharedDockerd {
    /// Starts the daemon (not when only listing); `label` prefixes its messages,
    /// `image` is the tag the busybox test image gets.
    pub fn start(args: &Arguments, label: &'static str, image: &'static str) -> Self {
        let required = required();
        let daemon = if args.list {
            Err("listing only".to_string())
        } else {
            Dockerd::start()
                .map(Arc::new)
                .map_err(|why| why.to_string())
                .inspect_err(|why| {
                    eprintln!("{label}: cannot start dockerd: {why}");
                })
        };
        Self {
            label,
            daemon,
            required,
            listing: args.list,
            image: Arc::new(ImageOnce {
                name: image,
                state: Mutex::new(None),
            }),
        }
    }

    /// A trial running `test` with the daemon: ignored when there is none and none
    /// is required, failed when one is required and did not start.
    pub fn trial(&self, name: &str, test: DockerdTest) -> Trial {
        let ignored = self.daemon.is_err() && !self.required && !self.listing;
        let daemon = self.daemon.clone();
        let image = Arc::clone(&self.image);
        Trial::test(name, move || match &daemon {
            Ok(d) => test(d, &image),
            Err(why) => {
                Err(format!("dockerd is required (CI=true) but did not start: {why}").into())
            }
        })
        .with_ignored_flag(ignored)
    }

    /// Stops the daemon once the trials (and their clones of it) are gone; call it
    /// before exiting, as `exit` skips destructors.
    pub fn stop(self) {
        if let Ok(d) = self.daemon {
            match Arc::try_unwrap(d) {
                Ok(mut d) => d.stop(),
                Err(_) => eprintln!("{}: daemon still shared at exit; not stopped", self.label),
            }
        }
    }
}

/// True when `CI` is `true` (or `1`), or `DPS_REQUIRE_DOCKERD=1`: then a missing or
/// broken dockerd must fail the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
        || std::env::var("DPS_REQUIRE_DOCKERD").is_ok_and(|v| v == "1")
}

/// `result`, its failure followed by the last `lines` lines of `d`'s log.
pub fn with_dockerd_log(
    d: &Dockerd,
    lines: usize,
    result: Result<(), Failed>,
) -> Result<(), Failed> {
    result.map_err(|e| {
        format!(
            "{}\ndockerd log:\n{}",
            e.message().unwrap_or_default(),
            d.log_tail(lines)
        )
        .into()
    })
}
