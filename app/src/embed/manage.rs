//! `/embeds`: the panels an internal portal can frame, with their addresses; embed tokens minted,
//! listed and revoked (admins; everyone else sees those actions disabled with the reason).

use leptos::prelude::*;
use leptos_meta::Title;
use pitwall::access::Role;
use pitwall::embed::Scope;
use pitwall::format_utc;

use super::api::{
    Catalogue, MintEmbedToken, RevokeEmbedToken, TokenList, embed_catalogue, embed_tokens,
};
use crate::access::{Session, missing_role};
use crate::components::{Col, Columns};

/// The Embeds page.
#[component]
pub fn EmbedsPage() -> impl IntoView {
    let mint = ServerAction::<MintEmbedToken>::new();
    let revoke = ServerAction::<RevokeEmbedToken>::new();
    let catalogue = Resource::new(|| (), |_| embed_catalogue());
    let session = Session::get();
    let tokens = Resource::new(
        move || (mint.version().get(), revoke.version().get()),
        |_| embed_tokens(),
    );
    view! {
        <Title text="Embeds"/>
        <h1>"Embeds"</h1>
        <Transition fallback=|| view! { <p>"Loading panels…"</p> }>
            {move || Suspend::new(async move {
                let user = session.0.await.ok().flatten();
                let denied = missing_role(user.as_ref(), Role::Admin);
                match catalogue.await {
                    Ok(catalogue) => view! {
                        <Framing origins=catalogue.frame_ancestors.clone()/>
                        <PanelTable catalogue=catalogue.clone()/>
                        <MintForm action=mint catalogue denied=denied.clone()/>
                        <TokenTable tokens revoke denied/>
                    }
                    .into_any(),
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Which origins may frame the panels, and how to change it.
#[component]
fn Framing(origins: Vec<String>) -> impl IntoView {
    view! {
        <p class="notice">
            {if origins.is_empty() {
                "No origin may frame these panels yet: add your portal's origin to `frame_ancestors` in the `[embed]` section of pitwall.toml.".to_owned()
            } else {
                format!("These origins may frame the panels: {}.", origins.join(", "))
            }}
        </p>
    }
}

#[component]
fn PanelTable(catalogue: Catalogue) -> impl IntoView {
    view! {
        <section aria-labelledby="panels-heading" class="card">
            <h2 id="panels-heading">"Panels"</h2>
            <p class="muted">
                "Each address takes " <code>"theme"</code> " (light, dark, auto), " <code>"from"</code> " and "
                <code>"to"</code> " (now, now-6h, or Unix ms), " <code>"refresh"</code> " (off, 30s, 5m) and "
                <code>"token"</code> "; a viewer signed in to Pitwall needs no token."
            </p>
            <table aria-label="Panels">
                <Columns of=&[Col::Text("Panel"), Col::Text("Shows"), Col::Text("Address")] />
                <tbody>
                    {catalogue.panels.into_iter().map(|p| {
                        let href = format!("/embed/{}?from=now-1h&refresh=30s", p.id);
                        view! {
                            <tr>
                                <th scope="row">{p.id.clone()}</th>
                                <td>{p.title}</td>
                                <td><a href=href.clone()>{href.clone()}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn MintForm(
    action: ServerAction<MintEmbedToken>,
    catalogue: Catalogue,
    denied: Option<String>,
) -> impl IntoView {
    let disabled = denied.is_some();
    let described = disabled.then_some("embeds-denied");
    let first_panel = catalogue
        .panels
        .first()
        .map(|p| p.id.clone())
        .unwrap_or_default();
    let selected = first_panel.clone();
    view! {
        <section aria-labelledby="mint-heading" class="card">
            <h2 id="mint-heading">"Mint an embed token"</h2>
            {denied.clone().map(|why| view! { <p id="embeds-denied" class="notice">{why}</p> })}
            <ActionForm action attr:class="row">
                <label>"Label" <input name="label" required placeholder="which portal uses it" disabled=disabled aria-describedby=described/></label>
                <label>
                    "Panel"
                    <select name="scope" disabled=disabled aria-describedby=described>
                        <option value="*">"every panel"</option>
                        {catalogue.panels.iter().map(|p| view! {
                            <option value=p.id.clone() selected=p.id == selected>{p.id.clone()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Lifetime" <input name="lifetime" value="30d" required size="6" disabled=disabled aria-describedby=described/></label>
                <button type="submit" disabled=disabled aria-describedby=described>"Mint token"</button>
            </ActionForm>
            {move || action.value().get().map(|result| match result {
                Ok(minted) => {
                    let panel = match &minted.summary.scope {
                        Scope::All => first_panel.clone(),
                        Scope::Panel(id) => id.clone(),
                    };
                    let url = pitwall::embed::token_path(&panel, &minted.token);
                    view! {
                        <div role="status" class="notice minted">
                            <p>"Token " <code>{minted.summary.id.clone()}</code> " minted. Copy it now: it is not shown again."</p>
                            <label>"New token" <input readonly value=minted.token.clone() class="wide"/></label>
                            <label>"Embed address" <input readonly value=url class="wide"/></label>
                        </div>
                    }
                    .into_any()
                }
                Err(e) => view! { <p role="alert" class="error">{format!("Minting failed: {e}")}</p> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn TokenTable(
    tokens: Resource<Result<TokenList, crate::error::AppError>>,
    revoke: ServerAction<RevokeEmbedToken>,
    denied: Option<String>,
) -> impl IntoView {
    let disabled = denied.is_some();
    let described = disabled.then_some("embeds-denied");
    view! {
        <section aria-labelledby="tokens-heading" class="card">
            <h2 id="tokens-heading">"Tokens"</h2>
            {move || revoke.value().get().map(|r| match r {
                Ok(()) => view! { <p role="status" class="notice">"The token is revoked."</p> }.into_any(),
                Err(e) => view! { <p role="alert" class="error">{format!("Revoking failed: {e}")}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p>"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        // Viewers and operators may not list tokens; the notice above says why.
                        Err(_) if disabled => view! { <p class="muted">"Only admins see the tokens."</p> }.into_any(),
                        Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                        Ok(TokenList { tokens, .. }) if tokens.is_empty() => view! { <p class="muted">"No token minted yet."</p> }.into_any(),
                        Ok(TokenList { at_ms: now, tokens: list }) => {
                            view! {
                                <table aria-label="Embed tokens">
                                    <Columns of=&[
                                        Col::Text("Token"), Col::Text("Label"), Col::Text("Opens"),
                                        Col::Text("Minted by"), Col::Text("Expires"),
                                        Col::Text("State"), Col::Text("Actions"),
                                    ] />
                                    <tbody>
                                        {list.into_iter().map(|t| {
                                            let state = t.state(now);
                                            let label = format!("Revoke token {}", t.id);
                                            view! {
                                                <tr>
                                                    <th scope="row"><code>{t.id.clone()}</code></th>
                                                    <td>{t.label.clone()}</td>
                                                    <td>{t.scope.to_string()}</td>
                                                    <td>{t.created_by.clone()} <br/> <span class="muted">{format_utc(t.created_at_ms)}</span></td>
                                                    <td>{format_utc(t.expires_at_ms)}</td>
                                                    <td>{state}</td>
                                                    <td>
                                                        <ActionForm action=revoke>
                                                            <input type="hidden" name="id" value=t.id.clone()/>
                                                            <button type="submit" class="danger" aria-label=label
                                                                disabled=disabled || state != "active" aria-describedby=described>"Revoke"</button>
                                                        </ActionForm>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}
