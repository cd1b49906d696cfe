//! The peek panel: the next messages workers will take from one queue, read without removing
//! them. Which queue is in the URL (`?peek=broker/queue`), so a peek can be linked and works
//! without JavaScript.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use pitwall::Unit;
use pitwall::queues::Message;

use super::api::peek_queue;
use crate::components::{Col, Columns, query_with};

/// How many messages a peek shows.
const COUNT: usize = 20;

/// The broker and queue of `?peek=broker/queue` (broker names never hold a `/`).
fn parse(value: &str) -> Option<(String, String)> {
    let (broker, queue) = value.split_once('/')?;
    (!broker.is_empty() && !queue.is_empty()).then(|| (broker.to_owned(), queue.to_owned()))
}

/// The messages of the queue the URL names, if it names one.
#[component]
pub fn PeekPanel() -> impl IntoView {
    let query = use_query_map();
    let asked = Memo::new(move |_| query.read().get("peek").and_then(|v| parse(&v)));
    let messages = Resource::new(
        move || asked.get(),
        |asked| async move {
            match asked {
                Some((broker, queue)) => peek_queue(broker, queue, COUNT).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let close = move || format!("/queues{}", query.with(|q| query_with(q, "peek", None)));
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let Some((broker, queue)) = asked.get() else { return ().into_any() };
                let heading = format!("Next messages on {queue} ({broker})");
                let body = match messages.await {
                    Ok(Some(list)) if list.is_empty() => view! { <p class="empty">"The queue is empty."</p> }.into_any(),
                    Ok(Some(list)) => table(&queue, list).into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p role="alert" class="error">{e.to_string()}</p> }.into_any(),
                };
                view! {
                    <section class="card" aria-label=heading.clone()>
                        <div class="section-head">
                            <h2>{heading.clone()}</h2>
                            <a href=close>"Close"</a>
                        </div>
                        <p class="hint">
                            "Read-only: the messages stay on the queue. Highest priority first, oldest first within a priority; arguments are cut after 200 characters."
                        </p>
                        {body}
                    </section>
                }
                .into_any()
            })}
        </Transition>
    }
}

fn table(queue: &str, list: Vec<Message>) -> impl IntoView {
    view! {
        <table aria-label=format!("Messages on {queue}")>
            <Columns of=&[
                Col::Num("#"), Col::Text("Task"), Col::Text("ID"), Col::Text("Arguments"),
                Col::Num("Priority"), Col::Num("Retries"), Col::Text("ETA"), Col::Num("Size"),
            ] />
            <tbody>
                {list
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let arguments = if m.kwargs.is_empty() || m.kwargs == "{}" {
                            m.args
                        } else {
                            format!("{} {}", m.args, m.kwargs)
                        };
                        view! {
                            <tr>
                                <td class="num">{i + 1}</td>
                                <th scope="row">{m.task}</th>
                                <td><code>{m.id}</code></td>
                                <td><code class="args">{arguments}</code></td>
                                <td class="num">{m.priority}</td>
                                <td class="num">{m.retries}</td>
                                <td>{m.eta.unwrap_or_else(|| "—".into())}</td>
                                <td class="num">{Unit::Bytes.format(m.bytes as f64)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_broker_and_queue() {
        assert_eq!(
            parse("tasks/emails"),
            Some(("tasks".into(), "emails".into()))
        );
        assert_eq!(parse("tasks/a/b"), Some(("tasks".into(), "a/b".into())));
        assert_eq!(parse("tasks/"), None);
        assert_eq!(parse("emails"), None);
    }
}
