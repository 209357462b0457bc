//! The `#[secure]` attribute of shieldwall. Use it through the `shieldwall` crate.
//!
//! Phases, one file each: `parse` (the grammar) → `check` (meaning checks that the
//! runtime would otherwise reject) → `expand` (code generation).

use proc_macro::TokenStream;

mod check;
mod expand;
mod parse;
mod units;

/// Declare a secured axum route. See the `shieldwall` crate documentation for the keys.
///
/// ```text
/// #[secure(post "/users", role = "admin", rate = "5/min")]
/// async fn create_user(user: Principal, Json(body): Json<NewUser>) -> Json<User> { ... }
/// ```
#[proc_macro_attribute]
pub fn secure(attr: TokenStream, item: TokenStream) -> TokenStream {
    let out = secure_impl(attr.into(), item.into());
    if std::env::var_os("SHIELDWALL_MACROS_DEBUG").is_some_and(|v| v == "1") {
        eprintln!("// #[secure] expansion\n{out}");
    }
    out.into()
}

fn secure_impl(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(e.span(), "#[secure] goes on an `async fn` handler");
            let err = e.to_compile_error();
            return quote::quote!(#err #item);
        }
    };
    let result = parse::parse(attr).and_then(|args| {
        let model = check::check(&args, &func)?;
        Ok(expand::expand(&args, &model, &func))
    });
    match result {
        Ok(tokens) => tokens,
        Err(e) => {
            // Still emit the user's function and a stand-in route, so one mistake does not
            // cascade into "cannot find function" or "not a type" where it is used.
            let err = e.to_compile_error();
            let stand_in = expand::fallback(&func);
            quote::quote!(#err #func #stand_in)
        }
    }
}
