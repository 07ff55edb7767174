//! `expansa users add|list|set-role|disable|reset-password`: the people who log in to the
//! dashboard, each with a role (viewer, analyst, admin; docs/api.md, "Accounts and roles").
//! A password is never a flag's value (it would be in the shell's history and the process
//! list): it is asked on the terminal, twice, or read from standard input with
//! `--password-stdin`; it is stored as an argon2id hash and never printed.

use crate::args::BookArgs;
use expansa_store::{check_password, check_user_name, Role, Store, StoreError};
use std::io::{IsTerminal, Read};

/// `expansa users` actions (each with the store's flags).
#[derive(clap::Subcommand, Debug)]
pub(crate) enum UsersAction {
    /// Add a user with a role; the password is asked (or read with --password-stdin).
    Add {
        #[command(flatten)]
        book: BookArgs,
        /// The user's name: 1 to 64 letters, digits, '.', '_', '-' or '@'.
        #[arg(long)]
        name: String,
        /// viewer (reads, dashboards), analyst (also quotes, saved dashboards) or admin (also
        /// writes, imports, users, keys).
        #[arg(long, value_parser = role)]
        role: Role,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List users with their role and whether they are disabled (never a password).
    List {
        #[command(flatten)]
        book: BookArgs,
    },
    /// Give a user another role.
    SetRole {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = role)]
        role: Role,
    },
    /// Disable a user: no more logins, and their sessions end at once.
    Disable {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        name: String,
    },
    /// Set a new password (enables a disabled user); the user's sessions end.
    ResetPassword {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

/// Where the password comes from.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct PasswordArgs {
    /// Read the password from standard input (one line) instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
}

/// A validated `users` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsersPlan {
    Add {
        name: String,
        role: Role,
        password_stdin: bool,
    },
    List,
    SetRole {
        name: String,
        role: Role,
    },
    Disable {
        name: String,
    },
    ResetPassword {
        name: String,
        password_stdin: bool,
    },
}

impl UsersAction {
    /// The store's flags and the plan, the name checked before the store is opened.
    pub(crate) fn plan(self) -> Result<(BookArgs, UsersPlan), String> {
        let checked = |name: String| {
            check_user_name(&name)
                .map(|()| name)
                .map_err(|e| format!("--name: {e}"))
        };
        Ok(match self {
            UsersAction::Add {
                book,
                name,
                role,
                password,
            } => (
                book,
                UsersPlan::Add {
                    name: checked(name)?,
                    role,
                    password_stdin: password.password_stdin,
                },
            ),
            UsersAction::List { book } => (book, UsersPlan::List),
            UsersAction::SetRole { book, name, role } => (
                book,
                UsersPlan::SetRole {
                    name: checked(name)?,
                    role,
                },
            ),
            UsersAction::Disable { book, name } => (
                book,
                UsersPlan::Disable {
                    name: checked(name)?,
                },
            ),
            UsersAction::ResetPassword {
                book,
                name,
                password,
            } => (
                book,
                UsersPlan::ResetPassword {
                    name: checked(name)?,
                    password_stdin: password.password_stdin,
                },
            ),
        })
    }
}

/// `--role`: viewer, analyst or admin.
pub(crate) fn role(s: &str) -> Result<Role, String> {
    Role::parse(s)
}

/// Runs a `users` command on `store`; returns what it prints (never a password).
pub async fn run(plan: &UsersPlan, store: &Store) -> anyhow::Result<String> {
    Ok(match plan {
        UsersPlan::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = read_password(name, *password_stdin)?;
            store.add_user(name, *role, &password).await?;
            format!("added user {name} ({role}); they log in at the dashboard's /login\n")
        }
        UsersPlan::List => {
            let users = store.users().await?;
            let mut rows = vec![["name", "role", "created", "disabled"]
                .map(String::from)
                .to_vec()];
            for u in users {
                rows.push(vec![
                    u.name,
                    u.role.to_string(),
                    u.created_at,
                    u.disabled_at.unwrap_or_default(),
                ]);
            }
            expansa_movements::table(&rows, &[false; 4])
        }
        UsersPlan::SetRole { name, role } => {
            store.set_role(name, *role).await?;
            format!("user {name} is now {role}\n")
        }
        UsersPlan::Disable { name } => {
            store.disable_user(name).await?;
            format!("disabled user {name}; their sessions ended (enable with reset-password)\n")
        }
        UsersPlan::ResetPassword {
            name,
            password_stdin,
        } => {
            if store.user(name).await?.is_none() {
                return Err(StoreError::NotFound(format!("no user {name:?}")).into());
            }
            let password = read_password(name, *password_stdin)?;
            store.reset_password(name, &password).await?;
            format!("set a new password for {name}; their sessions ended\n")
        }
    })
}

/// The new password of `name`: one line of standard input, or asked twice on the terminal
/// (not echoed). Checked for its length here, before the store is touched.
fn read_password(name: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .take(expansa_store::MAX_PASSWORD as u64 + 3)
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("--password-stdin: cannot read standard input: {e}"))?;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\n') {
            anyhow::bail!("--password-stdin: expected one line (the password)");
        }
        line.to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "no terminal to ask the password on: send it on standard input with --password-stdin"
            );
        }
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        check_password(&first)?;
        let again = rpassword::prompt_password("the same password again: ")?;
        if again != first {
            anyhow::bail!("the two passwords differ: nothing was changed");
        }
        first
    };
    check_password(&password)?;
    Ok(password)
}
