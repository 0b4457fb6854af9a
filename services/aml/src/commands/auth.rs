//! `aml auth nats`: a nats-server configuration with the platform's users and permissions.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use aml_bus::auth::{NatsUser, Users, server_config};
use aml_bus::topology::valid_bank;
use anyhow::{Context, bail};

/// Options of `aml auth nats`.
#[derive(Debug, clap::Args)]
pub struct AuthArgs {
    /// Banks that push alerts, comma-separated; each may publish only to aml.alerts.<bank>.
    #[arg(long, value_delimiter = ',', required = true)]
    banks: Vec<String>,
    /// Folder for `nats-auth.conf` (include it in nats-server's config) and `users.env` (0600).
    #[arg(long)]
    out: PathBuf,
}

fn password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("failed to read /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes the server configuration and the users' credentials.
pub fn run(args: &AuthArgs) -> anyhow::Result<()> {
    for bank in &args.banks {
        if !valid_bank(bank) {
            bail!(
                "--banks: `{bank}` is not a valid bank name (lowercase letters, digits, - and _)"
            );
        }
    }
    let user = |name: String| -> anyhow::Result<NatsUser> {
        Ok(NatsUser {
            name,
            password: password()?,
        })
    };
    let mut banks = Vec::new();
    for bank in &args.banks {
        banks.push((bank.clone(), user(format!("bank-{bank}"))?));
    }
    let users = Users {
        services: user("services".to_owned())?,
        worker: user("worker".to_owned())?,
        banks,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    let config_path = args.out.join("nats-auth.conf");
    let secrets_path = args.out.join("users.env");
    let mut secrets = String::new();
    for account in [&users.services, &users.worker]
        .into_iter()
        .chain(users.banks.iter().map(|(_, user)| user))
    {
        let variable = account.name.to_uppercase().replace('-', "_");
        secrets.push_str(&format!(
            "{variable}_USER={}\n{variable}_PASSWORD={}\n",
            account.name, account.password
        ));
    }
    for (path, text) in [
        (&config_path, server_config(&users)),
        (&secrets_path, secrets),
    ] {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("failed to write {}", path.display()))?;
        file.write_all(text.as_bytes())?;
    }
    println!(
        "wrote {} and {} (both 0600; hand each user only its own credentials)",
        config_path.display(),
        secrets_path.display()
    );
    Ok(())
}
