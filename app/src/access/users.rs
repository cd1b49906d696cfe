//! `/users`: who has access. Everyone signed in can see the list; only admins can change it, and
//! everyone else sees the actions disabled with the reason.

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::access::{Role, UserSummary};
use pitwall::format_utc;

use super::api::{AddUser, RemoveUser, SetPassword, SetRole, UnlockUser, list_users};
use super::{Session, missing_role};
use crate::components::{ActionResult, Col, Columns};

/// The Users page.
#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let remove = ServerAction::<RemoveUser>::new();
    let set_role = ServerAction::<SetRole>::new();
    let set_password = ServerAction::<SetPassword>::new();
    let unlock = ServerAction::<UnlockUser>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                remove.version().get(),
                set_role.version().get(),
                set_password.version().get(),
                unlock.version().get(),
            )
        },
        |_| list_users(),
    );
    let session = Session::get();
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        <Transition fallback=|| view! { <p>"Loading users…"</p> }>
            {move || Suspend::new(async move {
                let user = session.0.await.ok().flatten();
                let denied = missing_role(user.as_ref(), Role::Admin);
                let list = users.await;
                view! {
                    {denied.clone().map(|why| view! { <p id="users-denied" class="notice">{why}</p> })}
                    <ActionResult label="Adding the user" value=Signal::derive(move || add.value().get())/>
                    <ActionResult label="Removing the user" value=Signal::derive(move || remove.value().get())/>
                    <ActionResult label="Changing the role" value=Signal::derive(move || set_role.value().get())/>
                    <ActionResult label="Setting the password" value=Signal::derive(move || set_password.value().get())/>
                    <ActionResult label="Unlocking the user" value=Signal::derive(move || unlock.value().get())/>
                    {match list {
                        Ok(list) => view! { <UserTable list denied=denied.clone() remove set_role set_password unlock/> }.into_any(),
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                    }}
                    <AddUserForm action=add denied/>
                }
            })}
        </Transition>
    }
}

#[component]
fn UserTable(
    list: Vec<UserSummary>,
    denied: Option<String>,
    remove: ServerAction<RemoveUser>,
    set_role: ServerAction<SetRole>,
    set_password: ServerAction<SetPassword>,
    unlock: ServerAction<UnlockUser>,
) -> impl IntoView {
    let disabled = denied.is_some();
    let described = disabled.then_some("users-denied");
    view! {
        <div class="wide">
            <table aria-label="Users">
                <Columns of=&[
                    Col::Text("User"), Col::Text("Role"), Col::Text("Created"),
                    Col::Text("Sessions"), Col::Text("State"), Col::Text("Actions"),
                ] />
                <tbody>
                    {list
                        .into_iter()
                        .map(|u| {
                            let name = u.username.clone();
                            let role_label = format!("Role for {name}");
                            let password_label = format!("New password for {name}");
                            let remove_label = format!("Remove {name}");
                            let unlock_label = format!("Unlock {name}");
                            let locked = u.locked_until_ms.is_some();
                            let (n1, n2, n3, n4) = (name.clone(), name.clone(), name.clone(), name);
                            view! {
                                <tr>
                                    <th scope="row">{u.username.clone()}</th>
                                    <td>{u.role.as_str()}</td>
                                    <td>{format_utc(u.created_at_ms)}</td>
                                    <td class="num">{u.sessions}</td>
                                    <td>{lock_state(&u)}</td>
                                    <td class="actions">
                                        <ActionForm action=set_role>
                                            <input type="hidden" name="username" value=n1/>
                                            <label class="inline">
                                                <span class="sr-only">{role_label}</span>
                                                <select name="role" disabled=disabled aria-describedby=described>
                                                    {Role::ALL.into_iter().map(|r| view! {
                                                        <option value=r.as_str() selected=r == u.role>{r.as_str()}</option>
                                                    }).collect_view()}
                                                </select>
                                            </label>
                                            <button type="submit" disabled=disabled aria-describedby=described>"Change role"</button>
                                        </ActionForm>
                                        <ActionForm action=set_password>
                                            <input type="hidden" name="username" value=n2/>
                                            <label class="inline">
                                                <span class="sr-only">{password_label}</span>
                                                <input name="password" type="password" autocomplete="new-password" placeholder="new password" disabled=disabled aria-describedby=described/>
                                            </label>
                                            <button type="submit" disabled=disabled aria-describedby=described>"Set password"</button>
                                        </ActionForm>
                                        {locked.then(|| view! {
                                            <ActionForm action=unlock>
                                                <input type="hidden" name="username" value=n4/>
                                                <button type="submit" disabled=disabled aria-describedby=described aria-label=unlock_label>"Unlock"</button>
                                            </ActionForm>
                                        })}
                                        <ActionForm action=remove>
                                            <input type="hidden" name="username" value=n3/>
                                            <button type="submit" class="danger" disabled=disabled aria-describedby=described aria-label=remove_label>"Remove"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Whether and how a user's sign-in is locked: which addresses are locked out, and whether every
/// address waits after many failures.
fn lock_state(u: &UserSummary) -> String {
    let Some(until) = u.locked_until_ms else {
        return "active".to_owned();
    };
    let mut parts = Vec::new();
    if !u.locked_from.is_empty() {
        parts.push(format!("locked for {}", u.locked_from.join(", ")));
    }
    if u.waiting_until_ms.is_some() {
        parts.push("every address waits".to_owned());
    }
    format!("{} until {}", parts.join("; "), format_utc(until))
}

#[component]
fn AddUserForm(action: ServerAction<AddUser>, denied: Option<String>) -> impl IntoView {
    let disabled = denied.is_some();
    let described = disabled.then_some("users-denied");
    view! {
        <section aria-labelledby="add-user-heading" class="card">
            <h2 id="add-user-heading">"Add a user"</h2>
            <ActionForm action attr:class="row">
                <label>"User name" <input name="username" autocomplete="off" required disabled=disabled aria-describedby=described/></label>
                <label>
                    "Password"
                    <input name="password" type="password" autocomplete="new-password" required disabled=disabled aria-describedby=described/>
                </label>
                <label>
                    "Role"
                    <select name="role" disabled=disabled aria-describedby=described>
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" disabled=disabled aria-describedby=described>"Add user"</button>
            </ActionForm>
        </section>
    }
}
