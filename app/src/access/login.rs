//! The sign-in and first-run setup pages: plain HTML forms, so they work before (and without) the
//! wasm.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use pitwall::access::safe_next;

/// `/login`: user name and password; errors are the same for every kind of refusal.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    // Only a path on the console, whatever the link said (no open redirect).
    let next = move || {
        query
            .read()
            .get("next")
            .map_or_else(|| "/".to_owned(), |n| safe_next(&n).to_owned())
    };
    let message = move || {
        let q = query.read();
        match q.get("error").as_deref() {
            Some("refused") => Some(
                "The user name or password is not correct, or the account is locked for a while."
                    .to_owned(),
            ),
            Some("rate") => Some(format!(
                "Too many sign-in attempts from your address. Try again in {} seconds.",
                q.get("retry").unwrap_or_else(|| "60".into())
            )),
            Some(_) => Some("Sign-in is unavailable right now. Try again shortly.".to_owned()),
            None => None,
        }
    };
    let notice = move || {
        (query.read().get("setup").as_deref() == Some("done"))
            .then_some("The admin account is ready. Sign in.")
    };
    view! {
        <Title text="Sign in"/>
        <section class="card narrow">
            <h1>"Sign in"</h1>
            {move || message().map(|m| view! { <p role="alert" class="error">{m}</p> })}
            {move || notice().map(|m| view! { <p role="status" class="notice">{m}</p> })}
            <form method="post" action="/login" class="stack">
                <input type="hidden" name="next" value=next/>
                <label>"User name" <input name="username" autocomplete="username" required/></label>
                <label>
                    "Password"
                    <input name="password" type="password" autocomplete="current-password" required/>
                </label>
                <button type="submit">"Sign in"</button>
            </form>
        </section>
    }
}

/// `/setup?token=…`: creates the first admin with the one-time link printed at start.
#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let error = move || query.read().get("error");
    view! {
        <Title text="Set up Pitwall"/>
        <section class="card narrow">
            <h1>"Create the first admin"</h1>
            <p>"This link was printed when Pitwall started and works once, while no user exists."</p>
            {move || error().map(|m| view! { <p role="alert" class="error">{m}</p> })}
            <form method="post" action="/setup" class="stack">
                <input type="hidden" name="token" value=token/>
                <label>"User name" <input name="username" autocomplete="username" required/></label>
                <label>
                    "Password (at least 10 characters)"
                    <input name="password" type="password" autocomplete="new-password" minlength="10" required/>
                </label>
                <button type="submit">"Create admin"</button>
            </form>
        </section>
    }
}
