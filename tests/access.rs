//! The access service on the real SQLite store: the audit log is append-only, and every change
//! lands together with its audit row or not at all.

use std::sync::Arc;
use std::time::Duration;

use pitwall::access::{Access, AccessSettings, Actor, AuditFilter, Role};
use pitwall::store::{SqliteStore, Store};

async fn access() -> (tempfile::TempDir, Access, std::path::PathBuf) {
    access_with(AccessSettings::default()).await
}

async fn access_with(settings: AccessSettings) -> (tempfile::TempDir, Access, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data).await.unwrap());
    (dir, Access::new(store, settings), data)
}

#[tokio::test]
async fn the_audit_log_cannot_be_altered() {
    let (_dir, access, data) = access().await;
    access
        .add_user(
            &Actor::command_line(),
            "ann",
            "ann-password-1",
            Role::Viewer,
        )
        .await
        .unwrap();
    let url = format!("sqlite://{}", data.join("pitwall.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for statement in [
        "UPDATE audit_log SET outcome = 'forged'",
        "DELETE FROM audit_log",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("the audit log is append-only"),
            "{err}"
        );
    }
    let page = access
        .audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].outcome, "ok");
}

#[tokio::test]
async fn refused_changes_write_nothing() {
    let (_dir, access, _) = access().await;
    let cli = Actor::command_line();
    access
        .add_user(&cli, "ann", "ann-password-1", Role::Viewer)
        .await
        .unwrap();
    let viewer = Actor {
        name: "ann".into(),
        role: Role::Viewer,
        client_addr: None,
    };
    let err = access
        .add_user(&viewer, "eve", "eve-password-1", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "this needs the admin role");
    let err = access
        .add_user(&cli, "ann", "ann-password-2", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "a user named `ann` exists already");
    let err = access
        .add_user(&cli, "Bad Name", "bad-password-1", Role::Admin)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid user name"), "{err}");
    let users = access.users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["ann"]
    );
    assert_eq!(users[0].role, Role::Viewer);
    let page = access
        .audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1, "only the one successful change is audited");
}

#[tokio::test]
async fn sessions_end_after_inactivity_and_activity_keeps_them() {
    let settings = AccessSettings {
        idle: Duration::from_millis(2_000),
        ..AccessSettings::default()
    };
    let (_dir, access, _) = access_with(settings).await;
    access
        .add_user(
            &Actor::command_line(),
            "ann",
            "ann-password-1",
            Role::Viewer,
        )
        .await
        .unwrap();
    let (busy, _) = access
        .sign_in("ann", "ann-password-1", None, None)
        .await
        .unwrap();
    let (idle, _) = access
        .sign_in("ann", "ann-password-1", None, None)
        .await
        .unwrap();
    // The busy session is used every 500 ms for 4 s, twice the idle timeout (wide margins: a
    // loaded machine can hold a step back by a second).
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let user = access.authenticate(busy.expose()).await;
        assert_eq!(
            user.map(|u| u.username).as_deref(),
            Some("ann"),
            "an active session ended"
        );
    }
    assert!(
        access.authenticate(idle.expose()).await.is_none(),
        "an idle session lived on"
    );
}
