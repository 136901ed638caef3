//! End-to-end tests: run the real `guild` and `guildd` binaries (built by
//! `cargo build --workspace`) against private data dirs, sockets and projects in /tmp,
//! with real Python runs.

mod helpers;

mod bad_input;
mod cli;
mod collectors;
mod compare;
mod concurrent;
mod connections;
mod crash_management;
mod daemon;
mod disk_full;
mod errors;
mod example;
mod hostile_import;
mod load;
mod manage;
mod media;
mod new_user;
mod original;
mod output_fidelity;
mod python_client;
mod queue;
mod reliability;
mod run_db_owner;
mod security;
mod series_limits;
mod serve;
mod slurm;
mod small_faults;
mod status;
mod supervisor_killed;
mod sweeps;
mod systemd;
mod tcp;
mod tensorboard;
mod tokens;
mod traversal;
