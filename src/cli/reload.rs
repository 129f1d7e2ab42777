//! `jobmail reload`: the running daemon reads its config, templates and
//! certificate again (SIGHUP, as `systemctl reload` sends it), for
//! operators without systemd. The config is checked here first, as the
//! daemon will check it: one with errors is not sent, and they are shown.

use std::process::ExitCode;

use crate::app::App;

pub fn reload(app: &App) -> ExitCode {
    let problems = crate::app::checks::serve_problems(&app.config);
    if !problems.is_empty() {
        eprintln!("jobmail: not reloaded: the daemon would refuse this config");
        return super::config_problems(&app.config.path, &problems);
    }
    match crate::daemon::send_reload(&app.config.server.database) {
        Ok(pid) => {
            println!(
                "reload sent to jobmail serve (pid {pid}); it logs \"config reloaded\" or why it refused"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jobmail: {e:#}");
            ExitCode::FAILURE
        }
    }
}
