use super::*;

/// `RelayFlags::default()` (what `store` and `for_tests` use) is what the flags give.
#[test]
fn flag_defaults_are_the_defaults() {
    let cli =
        Cli::try_parse_from(["ykeep-relay", "relay", "--store-url", "http://s"]).expect("parses");
    let Command::Relay(args) = cli.command else {
        panic!("relay")
    };
    let parsed = format!("{:?}", args.relay);
    // Unless the environment sets one of them.
    let cmd = <RelayArgs as Args>::augment_args(clap::Command::new("relay"));
    let env_set = cmd
        .get_arguments()
        .filter_map(|a| a.get_env())
        .any(|name| std::env::var_os(name).is_some());
    if !env_set {
        assert_eq!(parsed, format!("{:?}", RelayFlags::default()));
        assert_eq!(args.server.listen.to_string(), defaults::LISTEN);
    }
    let policy = ykeep_core::SchedulePolicy::default();
    let d = RelayFlags::default();
    assert_eq!(
        (d.save_interval_ms, d.save_debounce_ms),
        (policy.save_interval_ms, policy.debounce_ms)
    );
}

#[test]
fn durations_parse_with_units_and_print_back() {
    for (text, ms) in [
        ("7d", 7 * 86_400_000),
        ("12h", 12 * 3_600_000),
        ("90m", 90 * 60_000),
        ("45s", 45_000),
        ("1500ms", 1500),
        ("0s", 0),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    assert_eq!(
        DisplayDuration(Duration::from_secs(7 * 86_400)).to_string(),
        "7d"
    );
    assert_eq!(
        DisplayDuration(Duration::from_millis(90 * 60_000)).to_string(),
        "90m"
    );
    assert_eq!(
        DisplayDuration(Duration::from_millis(1500)).to_string(),
        "1500ms"
    );
    for bad in ["7", "d", "7 days", "-1d", "1.5h", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad} should be refused");
    }
}
