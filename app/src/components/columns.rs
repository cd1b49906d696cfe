//! A table's header row, written once for every table of the console.

use leptos::prelude::*;

/// One column heading: text columns align left, number columns right (`class="num"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Col {
    /// A column of text.
    Text(&'static str),
    /// A column of numbers.
    Num(&'static str),
}

/// The `<thead>` of a table: one `<th scope="col">` per column, in order.
#[component]
pub fn Columns(of: &'static [Col]) -> impl IntoView {
    view! {
        <thead>
            <tr>
                {of
                    .iter()
                    .map(|col| match *col {
                        Col::Text(name) => view! { <th scope="col">{name}</th> }.into_any(),
                        Col::Num(name) => {
                            view! { <th scope="col" class="num">{name}</th> }.into_any()
                        }
                    })
                    .collect_view()}
            </tr>
        </thead>
    }
}
