//! The error answers every operation can give, added to the OpenAPI document in
//! one place from what the operation needs (a token, a body, path parameters)
//! rather than repeated, and forgotten, in each handler's annotation.

use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, ResponseBuilder,
        path::{Operation, ParameterIn},
        schema::{KnownFormat, Object, Schema, SchemaFormat, SchemaType, Type},
    },
};

use crate::error::{ErrorBody, ErrorCode, FieldError, Location};

/// The name of the error body's schema in `components.schemas`.
pub const ERROR_SCHEMA: &str = "Error";

/// Whether the operation needs a token: it names a security scheme and does
/// not also allow none (an empty requirement).
pub fn needs_token(op: &Operation) -> bool {
    op.security.as_ref().is_some_and(|reqs| {
        !reqs.is_empty()
            && !reqs.iter().any(|r| {
                serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
            })
    })
}

fn has_path_params(op: &Operation) -> bool {
    op.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => p.parameter_in == ParameterIn::Path,
        RefOr::Ref(_) => false,
    })
}

fn has_input(op: &Operation) -> bool {
    op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty())
}

/// Every operation of the document, with its path.
pub fn operations_mut(api: &mut OpenApi) -> impl Iterator<Item = (&String, &mut Operation)> {
    api.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        .map(move |op| (path, op))
    })
}

/// The statuses every operation of this kind can answer, with why.
fn standard_statuses(op: &Operation) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if has_input(op) {
        out.push((
            "400",
            "Validation failed: `errors` names every failing field (or the body is malformed)",
        ));
    }
    if needs_token(op) {
        out.push((
            "401",
            "No token, or an invalid, expired or revoked one (`code`: unauthenticated, \
             invalid_token, token_expired, token_revoked)",
        ));
        out.push((
            "403",
            "The token's role may not do this, or a cookie session's write lacks its CSRF token",
        ));
    }
    if has_path_params(op) {
        out.push(("404", "Not found"));
    }
    if op.request_body.is_some() {
        out.push(("413", "The body is over the size limit"));
        out.push((
            "415",
            "The body is neither JSON nor a form (`application/x-www-form-urlencoded`)",
        ));
    }
    out.push((
        "429",
        "Too many requests from this address (`Retry-After` says when to retry)",
    ));
    out.push((
        "503",
        "A database or another service is not answering, or the server is overloaded \
         (`Retry-After` says when to retry)",
    ));
    out
}

/// Adds the standard error answers to every operation, gives every error
/// answer the [`ErrorBody`] schema, and registers that schema.
pub fn add_error_responses(api: &mut OpenApi) {
    let error_ref = || RefOr::Ref(Ref::from_schema_name(ERROR_SCHEMA));
    let error_content = || ContentBuilder::new().schema(Some(error_ref())).build();
    let retry_after = || {
        HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::Integer)))
            .description(Some("Seconds to wait before retrying"))
            .build()
    };
    for (_, op) in operations_mut(api) {
        for (status, description) in standard_statuses(op) {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| {
                    RefOr::T(ResponseBuilder::new().description(description).build())
                });
        }
        for (status, response) in op.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            if response.content.is_empty() {
                response
                    .content
                    .insert("application/json".into(), RefOr::T(error_content()));
            }
            if matches!(status.as_str(), "429" | "503") {
                response
                    .headers
                    .entry("Retry-After".into())
                    .or_insert_with(|| RefOr::T(retry_after()));
            }
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    for (name, schema) in [
        (ERROR_SCHEMA.to_owned(), ErrorBody::schema()),
        (ErrorCode::name().into_owned(), ErrorCode::schema()),
        (FieldError::name().into_owned(), FieldError::schema()),
        (Location::name().into_owned(), Location::schema()),
    ] {
        components.schemas.insert(name, schema);
    }
}

/// The success envelope (`{success: true, message?, data?}`), the schema of
/// every 2xx JSON answer whose handler does not name a more precise one.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Envelope)]
pub struct EnvelopeDoc {
    /// Always `true`.
    pub success: bool,
    #[schema(nullable = false)]
    pub message: Option<String>,
    /// The answer's data; its shape is the operation's (see its description).
    #[schema(nullable = false)]
    pub data: Option<serde_json::Value>,
}

/// Gives every 2xx answer without a declared body the [`EnvelopeDoc`] schema.
pub fn add_success_envelope(api: &mut OpenApi) {
    for (_, op) in operations_mut(api) {
        for (status, response) in op.responses.responses.iter_mut() {
            if let RefOr::T(response) = response
                && status.starts_with('2')
                && status != "204"
                && response.content.is_empty()
            {
                let content = ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("Envelope"))))
                    .build();
                response
                    .content
                    .insert("application/json".into(), RefOr::T(content));
            }
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("Envelope".into(), EnvelopeDoc::schema());
}

/// Gives the 2xx answers of a service the exact schemas of their bodies, read
/// from the service's `responses.json` (one file per service, next to its
/// handlers):
///
/// ```json
/// { "components": { "User": { "type": "object", … } },
///   "responses": { "me": { "200": { "message": false, "data": { "$ref": "#/components/schemas/UserData" } } } } }
/// ```
///
/// Each answer is the envelope `{success: true, message, data}` closed to
/// other keys: `message` `true` (always sent), `false` (never) or
/// `"optional"`; `data` the schema of `data` (absent: no `data`); `extra` keys
/// sent beside them at the top (the contract's `orders`/`pagination` copies).
/// Whether the server keeps to them is what schemathesis' response checks
/// prove on every answer of the fuzz runs (`scripts/fuzz.py`).
///
/// Returns what did not fit: an operation id or status the document does not
/// have (when it has any of the file's), or a schema that is not one.
pub fn add_response_schemas(api: &mut OpenApi, source: &str) -> Vec<String> {
    use serde_json::{Map, Value, json};
    let mut problems = Vec::new();
    let doc: Value = match serde_json::from_str(source) {
        Ok(v) => v,
        Err(e) => return vec![format!("responses.json does not parse: {e}")],
    };
    let parse = |v: Value, what: &str, problems: &mut Vec<String>| {
        serde_json::from_value::<RefOr<Schema>>(v)
            .map_err(|e| problems.push(format!("{what}: not a schema: {e}")))
            .ok()
    };
    if let Some(components) = doc.get("components").and_then(Value::as_object) {
        for (name, schema) in components {
            if let Some(schema) = parse(schema.clone(), name, &mut problems) {
                api.components
                    .get_or_insert_with(Default::default)
                    .schemas
                    .insert(name.clone(), schema);
            }
        }
    }
    let Some(responses) = doc.get("responses").and_then(Value::as_object) else {
        return problems;
    };
    // A process of the split shape documents its own service only: another
    // service's file names none of its operations (its components stay, as
    // answers refer to each other's, e.g. an order's `ProductOut`).
    let served = responses.keys().any(|id| {
        operations_mut(api).any(|(_, op)| op.operation_id.as_deref() == Some(id.as_str()))
    });
    if !served {
        return problems;
    }
    for (id, statuses) in responses {
        let Some((_, op)) =
            operations_mut(api).find(|(_, op)| op.operation_id.as_deref() == Some(id.as_str()))
        else {
            problems.push(format!("{id}: no such operation"));
            continue;
        };
        for (status, answer) in statuses.as_object().into_iter().flatten() {
            let what = format!("{id} {status}");
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else {
                problems.push(format!("{what}: the operation has no such answer"));
                continue;
            };
            let mut required = vec![json!("success")];
            let mut props = Map::new();
            props.insert("success".into(), json!({"type": "boolean", "enum": [true]}));
            match answer.get("message") {
                Some(Value::Bool(true)) => {
                    required.push(json!("message"));
                    props.insert("message".into(), json!({"type": "string"}));
                }
                Some(Value::String(s)) if s == "optional" => {
                    props.insert("message".into(), json!({"type": "string"}));
                }
                Some(Value::Bool(false)) | None => {}
                Some(other) => problems.push(format!("{what}: message is {other}")),
            }
            if let Some(data) = answer.get("data") {
                required.push(json!("data"));
                props.insert("data".into(), data.clone());
            }
            for (key, schema) in answer
                .get("extra")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                required.push(json!(key));
                props.insert(key.clone(), schema.clone());
            }
            let body = json!({
                "type": "object",
                "required": required,
                "properties": props,
                "additionalProperties": false,
            });
            if let Some(schema) = parse(body, &what, &mut problems) {
                response.content.insert(
                    "application/json".into(),
                    RefOr::T(ContentBuilder::new().schema(Some(schema)).build()),
                );
            }
        }
    }
    problems
}

/// Path parameters take the rules their extractors enforce: integer ids are
/// positive ([`crate::extract::IdParam`]), product ids are 24 hex digits
/// ([`crate::ports::parse_product_id`]).
pub fn constrain_path_ids(api: &mut OpenApi) {
    for (path, op) in operations_mut(api) {
        let product = path.starts_with("/api/products/{id}");
        for param in op.parameters.iter_mut().flatten() {
            let RefOr::T(param) = param else { continue };
            if param.parameter_in != ParameterIn::Path {
                continue;
            }
            let Some(RefOr::T(Schema::Object(schema))) = param.schema.as_mut() else {
                continue;
            };
            if schema.schema_type == SchemaType::Type(Type::Integer) {
                schema.minimum = Some(utoipa::Number::Int(1));
                schema.format = Some(SchemaFormat::KnownFormat(KnownFormat::Int64));
            } else if product && param.name == "id" {
                schema.pattern = Some(crate::ports::PRODUCT_ID_PATTERN.into());
            }
        }
    }
}

/// Says that parameter `name` of `GET path` may also be blank (empty or
/// white space), which the handler reads as not given: its schema becomes
/// `anyOf: [the schema, a blank string]`.
pub fn blank_means_absent(api: &mut OpenApi, path: &str, name: &str) {
    let Some(p) = parameter(api, "get", path, name) else {
        return;
    };
    let Some(schema) = p.schema.take() else {
        return;
    };
    let mut blank = Object::with_type(Type::String);
    // Spaces only: tab and the other controls are refused in a URL.
    blank.pattern = Some("^ *$".into());
    p.schema = Some(RefOr::T(Schema::AnyOf(
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(schema)
            .item(RefOr::T(Schema::Object(blank)))
            .build(),
    )));
}

/// Parameter `name` of operation `method path`.
pub fn parameter<'a>(
    api: &'a mut OpenApi,
    method: &str,
    path: &str,
    name: &str,
) -> Option<&'a mut utoipa::openapi::path::Parameter> {
    let item = api.paths.paths.get_mut(path)?;
    let op = match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }?;
    op.parameters.iter_mut().flatten().find_map(|p| match p {
        RefOr::T(p) if p.name == name => Some(p),
        _ => None,
    })
}

/// The schema of parameter `name` of operation `method path`, to refine it
/// with the rules a handler enforces (each service's `refine_spec`).
pub fn param_schema<'a>(
    api: &'a mut OpenApi,
    method: &str,
    path: &str,
    name: &str,
) -> Option<&'a mut Object> {
    match parameter(api, method, path, name)?.schema.as_mut() {
        Some(RefOr::T(Schema::Object(o))) => Some(o),
        _ => None,
    }
}

/// The schema of property `prop` of the component schema `schema`.
pub fn property_schema<'a>(
    api: &'a mut OpenApi,
    schema: &str,
    prop: &str,
) -> Option<&'a mut Object> {
    let components = api.components.as_mut()?;
    let Some(RefOr::T(Schema::Object(obj))) = components.schemas.get_mut(schema) else {
        return None;
    };
    match obj.properties.get_mut(prop)? {
        RefOr::T(Schema::Object(o)) => Some(o),
        _ => None,
    }
}

/// Whether `o` admits null: an `Option` field (`[T, null]`, or any value
/// for an `Option<Value>`), which the handlers read as missing.
fn is_nullable(o: &Object) -> bool {
    match &o.schema_type {
        SchemaType::Array(ts) => ts.contains(&Type::Null),
        SchemaType::AnyValue => true,
        SchemaType::Type(_) => false,
    }
}

/// `t`, or `t` or null when `o` was nullable (an optional field the handlers
/// read null as missing).
fn typed(o: &Object, t: Type) -> SchemaType {
    if is_nullable(o) {
        SchemaType::from_iter([t, Type::Null])
    } else {
        SchemaType::Type(t)
    }
}

/// Makes `o` a string among `values` (null too when it was nullable).
pub fn string_enum(o: &mut Object, values: &[&str]) {
    let mut list: Vec<serde_json::Value> =
        values.iter().map(|v| serde_json::Value::from(*v)).collect();
    if is_nullable(o) {
        list.push(serde_json::Value::Null);
    }
    o.schema_type = typed(o, Type::String);
    o.enum_values = Some(list);
}

/// Makes `o` an integer in `min..=max`.
pub fn integer_range(o: &mut Object, min: i64, max: i64) {
    o.schema_type = typed(o, Type::Integer);
    o.format = Some(SchemaFormat::KnownFormat(KnownFormat::Int64));
    o.minimum = Some(utoipa::Number::Int(min as isize));
    o.maximum = Some(utoipa::Number::Int(max as isize));
}

/// A character a JSON body's text may hold: control characters other than
/// tab, newline and carriage return are refused (`extract::inspect_json`).
pub const TEXT_CHAR: &str = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]";
/// A character of [`TEXT_CHAR`] that is not blank (what trimming keeps).
pub const NONBLANK_CHAR: &str = r"[^\s\u0000-\u001F\u007F-\u009F]";
/// A character a path or query value may hold: the URL check refuses
/// `%00`–`%1F` and `%7F` (`http::encodes_control_character`).
pub const PARAM_CHAR: &str = r"[^\u0000-\u001F\u007F]";

/// A text the handler trims and then wants `min_chars` (0, 1 or 2) to `max`
/// characters of: `maxLength` bounds the text as sent, the pattern asks for
/// that many non-blank characters (and no control characters).
pub fn trimmed_text(o: &mut Object, min_chars: usize, max: usize) {
    o.schema_type = typed(o, Type::String);
    o.max_length = Some(max);
    let t = TEXT_CHAR;
    let n = NONBLANK_CHAR;
    o.pattern = Some(match min_chars {
        0 => format!("^{t}*$"),
        1 => format!("^{t}*{n}{t}*$"),
        _ => format!("^{t}*{n}{t}*{n}{t}*$"),
    });
}

fn is_string(o: &Object) -> bool {
    match &o.schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(ts) => ts.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// Every string without a pattern of its own gets `^{class}*$`.
fn forbid_in_schema(schema: &mut Schema, class: &str) {
    match schema {
        Schema::Object(o) => {
            // With a format too (an image URL is text the body check reads).
            if is_string(o) && o.pattern.is_none() && o.enum_values.is_none() {
                o.pattern = Some(format!("^{class}*$"));
            }
            for p in o.properties.values_mut() {
                if let RefOr::T(s) = p {
                    forbid_in_schema(s, class);
                }
            }
        }
        Schema::Array(a) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(item) = &mut a.items
                && let RefOr::T(s) = item.as_mut()
            {
                forbid_in_schema(s, class);
            }
        }
        // Each alternative of a body (an order with `addressId` or with a
        // `shippingAddress`) is text like any other.
        Schema::AnyOf(c) => c.items.iter_mut().for_each(|s| forbid_in_ref(s, class)),
        Schema::OneOf(c) => c.items.iter_mut().for_each(|s| forbid_in_ref(s, class)),
        Schema::AllOf(c) => c.items.iter_mut().for_each(|s| forbid_in_ref(s, class)),
        _ => {}
    }
}

fn forbid_in_ref(schema: &mut RefOr<Schema>, class: &str) {
    if let RefOr::T(s) = schema {
        forbid_in_schema(s, class);
    }
}

/// Says in the document what the server refuses in any text: control
/// characters (in a body other than tab, newline and carriage return).
pub fn forbid_control_characters(api: &mut OpenApi) {
    for (_, op) in operations_mut(api) {
        for p in op.parameters.iter_mut().flatten() {
            if let RefOr::T(p) = p
                && let Some(RefOr::T(s)) = p.schema.as_mut()
            {
                forbid_in_schema(s, PARAM_CHAR);
            }
        }
        if let Some(RefOr::T(body)) = op.request_body.as_mut() {
            for content in body.content.values_mut() {
                if let RefOr::T(content) = content
                    && let Some(RefOr::T(s)) = content.schema.as_mut()
                {
                    forbid_in_schema(s, TEXT_CHAR);
                }
            }
        }
    }
    if let Some(components) = api.components.as_mut() {
        for (name, schema) in components.schemas.iter_mut() {
            // Answers are described as sent; the rule is the input's.
            if describes_answer(name) {
                continue;
            }
            if let RefOr::T(s) = schema {
                forbid_in_schema(s, TEXT_CHAR);
            }
        }
    }
}

/// `o` without null among its types and values.
fn drop_null(o: &mut Object) {
    if let SchemaType::Array(types) = &o.schema_type {
        let types: Vec<Type> = types
            .iter()
            .filter(|t| **t != Type::Null)
            .cloned()
            .collect();
        o.schema_type = match types.as_slice() {
            [one] => SchemaType::Type(one.clone()),
            _ => SchemaType::Array(types),
        };
    }
    if let Some(values) = o.enum_values.as_mut() {
        values.retain(|v| !v.is_null());
    }
}

/// The component schema a body's content refers to.
fn ref_name(content: &RefOr<utoipa::openapi::content::Content>) -> Option<String> {
    match content {
        RefOr::T(c) => match &c.schema {
            Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().map(str::to_owned),
            _ => None,
        },
        RefOr::Ref(_) => None,
    }
}

/// Marks `fields` of the component schema `schema` required (and not null:
/// the handlers read a null as missing).
pub fn require(api: &mut OpenApi, schema: &str, fields: &[&str]) {
    for field in fields {
        if let Some(o) = property_schema(api, schema, field) {
            drop_null(o);
        }
    }
    let Some(RefOr::T(Schema::Object(obj))) = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(schema))
    else {
        return;
    };
    for field in fields {
        if !obj.required.iter().any(|r| r == field) {
            obj.required.push((*field).to_owned());
        }
    }
}

/// A copy of component schema `from` under the name `to` with nothing
/// required (a PATCH body of the same fields); returns whether `from` exists.
pub fn optional_copy(api: &mut OpenApi, from: &str, to: &str) -> bool {
    let Some(components) = api.components.as_mut() else {
        return false;
    };
    let Some(RefOr::T(Schema::Object(obj))) = components.schemas.get(from) else {
        return false;
    };
    let mut copy = obj.clone();
    copy.required.clear();
    components
        .schemas
        .insert(to.to_owned(), RefOr::T(Schema::Object(copy)));
    true
}

/// Points the JSON and form bodies of `method path` at component schema `name`.
pub fn set_body_schema(api: &mut OpenApi, method: &str, path: &str, name: &str) {
    let Some(item) = api.paths.paths.get_mut(path) else {
        return;
    };
    let op = match method {
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    };
    if let Some(RefOr::T(body)) = op.and_then(|op| op.request_body.as_mut()) {
        for content in body.content.values_mut() {
            if let RefOr::T(content) = content {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name(name)));
            }
        }
    }
}

/// Adds to the `status` answer of `from` (an operation id) a link to each
/// operation id of `to`, passing `param` from the answer's body at `pointer`
/// (`create → read → update → delete` for stateful clients and fuzzers).
pub fn link(api: &mut OpenApi, from: &str, status: &str, pointer: &str, param: &str, to: &[&str]) {
    for (_, op) in operations_mut(api) {
        if op.operation_id.as_deref() != Some(from) {
            continue;
        }
        let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else {
            continue;
        };
        for target in to {
            let link = utoipa::openapi::link::LinkBuilder::new()
                .operation_id(*target)
                .parameter(param, format!("$response.body#{pointer}"))
                .build();
            response.links.insert((*target).to_owned(), RefOr::T(link));
        }
    }
}

/// Whether a body schema (as JSON) can travel as a form: its properties are
/// scalars or lists of scalars. OpenAPI's form encoding has no spelling for
/// nested objects (the server reads `qs`-style `a[b]=` keys, which OpenAPI
/// cannot describe), so bodies with them are offered as JSON only.
/// Whether a schema (as JSON) describes an object: it has properties, or
/// `object` among its types.
fn is_object_schema(v: &serde_json::Value) -> bool {
    v.get("properties").is_some()
        || match v.get("type") {
            Some(serde_json::Value::String(t)) => t == "object",
            Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "object"),
            _ => false,
        }
}

/// Whether component `name` describes an answer rather than a request
/// (`…Out`, the error shape and its parts, the envelope, the zone list):
/// the request rules (control characters, closed free-form JSON) are not
/// written into it.
fn describes_answer(name: &str) -> bool {
    name.ends_with("Out")
        || matches!(
            name,
            "Error" | "Envelope" | "FieldError" | "ErrorCode" | "Location" | "TimeZone"
        )
}

fn is_flat(schema: &serde_json::Value) -> bool {
    // A scalar, a list of scalars, or a choice between such (a list or its
    // one item, which a form cannot tell apart anyway).
    fn flat_value(v: &serde_json::Value, depth: u8) -> bool {
        let object = is_object_schema(v);
        let choices = ["anyOf", "oneOf"]
            .iter()
            .filter_map(|k| v.get(*k).and_then(serde_json::Value::as_array))
            .flatten()
            .all(|c| depth == 0 && flat_value(c, depth + 1));
        !object
            && choices
            && v.get("items")
                .is_none_or(|i| depth == 0 && flat_value(i, depth + 1))
    }
    schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .is_some_and(|props| props.values().all(|p| flat_value(p, 0)))
}

/// Offers every JSON body whose fields are flat as a form too (the shared
/// body extractor reads both).
pub fn add_form_bodies(api: &mut OpenApi) {
    let schemas: std::collections::BTreeMap<String, serde_json::Value> = api
        .components
        .as_ref()
        .map(|c| {
            c.schemas
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), serde_json::to_value(v).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut forms = Vec::new();
    for (_, op) in operations_mut(api) {
        let Some(RefOr::T(body)) = op.request_body.as_mut() else {
            continue;
        };
        let Some(json) = body.content.get("application/json").cloned() else {
            continue;
        };
        let Some(name) = ref_name(&json).filter(|name| schemas.get(name).is_some_and(is_flat))
        else {
            continue;
        };
        let form = format!("{name}Form");
        body.content.insert(
            "application/x-www-form-urlencoded".into(),
            RefOr::T(
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name(&form))))
                    .build(),
            ),
        );
        forms.push((name, form));
    }
    // A form has no null: `phone=null` is the text "null". Each form body is
    // the JSON body's schema without null among its fields' types (leave a
    // field out instead); the JSON body keeps null.
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for (name, form) in forms {
        let Some(RefOr::T(Schema::Object(o))) = components.schemas.get(&name) else {
            continue;
        };
        let mut copy = o.clone();
        for prop in copy.properties.values_mut() {
            if let RefOr::T(Schema::Object(p)) = prop {
                drop_null(p);
            }
        }
        components
            .schemas
            .insert(form, RefOr::T(Schema::Object(copy)));
    }
}

/// Request bodies name their fields: anything else is ignored by the
/// handlers, so the document allows no other property (a key or value with a
/// control character would be refused, which a schema cannot say of keys it
/// does not name).
pub fn close_request_bodies(api: &mut OpenApi) {
    let mut names = Vec::new();
    for (_, op) in operations_mut(api) {
        if let Some(RefOr::T(body)) = op.request_body.as_ref() {
            names.extend(body.content.values().filter_map(ref_name));
        }
    }
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for name in names {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(&name)
            && !o.properties.is_empty()
            && o.additional_properties.is_none()
        {
            o.additional_properties = Some(Box::new(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        }
    }
}

/// The name of the "any JSON value without control characters" schema.
pub const CLEAN_JSON: &str = "CleanJson";

/// The document as served: [`OpenApi`] serialised, then the places where a
/// request may carry free-form JSON (a product's `attributes`, the extra keys
/// old clients send on order lines, a review's `orderId`) closed to what the
/// server really takes: any JSON whose texts *and keys* hold no control
/// characters (the body check refuses them anywhere). JSON Schema says that
/// with `propertyNames` and a recursive schema, which utoipa's types cannot
/// hold, hence the second step on the JSON.
pub fn to_json(api: &OpenApi) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut doc = serde_json::to_value(api).unwrap_or(Value::Null);
    let text = format!("^{TEXT_CHAR}*$");
    let names = json!({ "pattern": text });
    let clean_ref = json!({ "$ref": format!("#/components/schemas/{CLEAN_JSON}") });
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return doc;
    };
    fn close(v: &mut Value, names: &Value, clean_ref: &Value) {
        let is_object = is_object_schema(v);
        let Some(o) = v.as_object_mut() else { return };
        if is_object && o.get("additionalProperties") != Some(&Value::Bool(false)) {
            o.insert("propertyNames".into(), names.clone());
            o.insert("additionalProperties".into(), clean_ref.clone());
        }
        for (key, child) in o.iter_mut() {
            match key.as_str() {
                "properties" => {
                    for prop in child
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|m| m.values_mut())
                    {
                        // A property of any type (`{}` or a description alone).
                        let any = prop
                            .as_object()
                            .is_some_and(|p| p.keys().all(|k| k == "description"));
                        if any {
                            if let Some(p) = prop.as_object_mut() {
                                p.insert("$ref".into(), clean_ref.clone());
                            }
                        } else {
                            close(prop, names, clean_ref);
                        }
                    }
                }
                "items" | "not" => close(child, names, clean_ref),
                "anyOf" | "oneOf" | "allOf" => {
                    for c in child.as_array_mut().into_iter().flatten() {
                        close(c, names, clean_ref);
                    }
                }
                _ => {}
            }
        }
    }
    // Request-side schemas only: answers are described exactly elsewhere.
    for (name, schema) in schemas.iter_mut() {
        if !describes_answer(name) {
            close(schema, &names, &clean_ref);
        }
    }
    schemas.insert(
        CLEAN_JSON.into(),
        json!({
            "description": "Any JSON value whose texts and keys hold no control characters \
                            (other than tab, newline and carriage return)",
            "anyOf": [
                { "type": ["null", "boolean", "number"] },
                { "type": "string", "pattern": text },
                { "type": "array", "items": clean_ref },
                { "type": "object", "propertyNames": names, "additionalProperties": clean_ref }
            ]
        }),
    );
    doc
}

#[cfg(test)]
mod tests {
    /// The pattern the document publishes and the parser agree, on the edges.
    #[test]
    fn product_id_pattern_matches_the_parser() {
        let pattern = crate::ports::PRODUCT_ID_PATTERN;
        let matches = |s: &str| {
            // ^[0-9a-fA-F]{24}$ spelled out, so the test needs no regex engine.
            assert_eq!(pattern, "^[0-9a-fA-F]{24}$");
            s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
        };
        for s in [
            "65f0c0ffee0000000000abcd",
            "65F0C0FFEE0000000000ABCD",
            "65f0c0ffee0000000000abc",
            "65f0c0ffee0000000000abcde",
            "65f0c0ffee0000000000abcg",
            "",
        ] {
            assert_eq!(
                matches(s),
                crate::ports::parse_product_id(s).is_some(),
                "{s:?}"
            );
        }
    }
}
