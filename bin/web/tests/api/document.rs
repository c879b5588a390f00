//! The OpenAPI document states what the server enforces: lengths, the email shape,
//! the characters names, titles and content may hold, `limit`'s range and which
//! fields are required. Each documented string rule is run against the domain's
//! validator on every Unicode character, so the two cannot drift apart.

use actix_web::test::TestRequest;
use regex::Regex;
use serde_json::{Value, json};

use domain::validate::{Content, Email, Name, Title};

use crate::common::{self, app, bearer, send};

fn doc() -> Value {
    serde_json::to_value(web::routes::document()).unwrap()
}

fn schema(name: &str) -> Value {
    doc()["components"]["schemas"][name].clone()
}

/// What the document says of one string field: its lengths, a pattern it must
/// match and one it must not.
struct Rule {
    min: usize,
    max: usize,
    pattern: Option<Regex>,
    forbidden: Option<Regex>,
}

impl Rule {
    fn of(body: &str, field: &str) -> Self {
        let property = &schema(body)["properties"][field];
        assert_eq!(property["type"], "string", "{body}.{field}");
        let length = |key: &str| {
            usize::try_from(
                property[key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{body}.{field} has no {key}")),
            )
            .unwrap()
        };
        let regex = |pattern: &Value| pattern.as_str().map(|p| Regex::new(p).unwrap());
        let rule = Self {
            min: length("minLength"),
            max: length("maxLength"),
            pattern: regex(&property["pattern"]),
            forbidden: regex(&property["not"]["pattern"]),
        };
        assert!(
            rule.pattern.is_some() || rule.forbidden.is_some(),
            "{body}.{field} states no characters"
        );
        rule
    }

    fn allows(&self, value: &str) -> bool {
        let length = value.chars().count();
        self.min <= length
            && length <= self.max
            && self.pattern.as_ref().is_none_or(|p| p.is_match(value))
            && self.forbidden.as_ref().is_none_or(|p| !p.is_match(value))
    }
}

/// The schema of `field`, the same in each body that has it.
fn rule(bodies: &[&str], field: &str) -> Rule {
    let schemas = doc()["components"]["schemas"].clone();
    let first = &schemas[bodies[0]]["properties"][field];
    for body in bodies {
        assert_eq!(
            &schemas[body]["properties"][field], first,
            "{body}.{field} differs from {}.{field}",
            bodies[0]
        );
    }
    Rule::of(bodies[0], field)
}

/// The document and the validator agree on every string of `shapes`, each shape's
/// `_` replaced by every Unicode scalar value in turn.
fn agree_on_every_char(rule: &Rule, field: &str, shapes: &[&str], server: impl Fn(&str) -> bool) {
    let mut disagreements = Vec::new();
    let mut value = String::new();
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        for shape in shapes {
            value.clear();
            for s in shape.chars() {
                value.push(if s == '_' { c } else { s });
            }
            if rule.allows(&value) != server(&value) {
                disagreements.push(format!("{value:?} (U+{:04X})", u32::from(c)));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{field}: the document and the server disagree on {} values, first {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(10)]
    );
}

/// Alone, inside, leading and trailing: where trimming and the character rules
/// apply differently.
const LABEL_SHAPES: &[&str] = &["_", "a_b", "_a", "a_"];

#[test]
fn names_are_documented_as_validated() {
    let rule = rule(&["NewUserBody", "UserChangesBody"], "name");
    assert_eq!((rule.min, rule.max), (1, Name::MAX));
    agree_on_every_char(&rule, "name", LABEL_SHAPES, |v| Name::parse(v).is_ok());
}

#[test]
fn titles_are_documented_as_validated() {
    let rule = rule(&["NewPostBody", "PostChangesBody"], "title");
    assert_eq!((rule.min, rule.max), (1, Title::MAX));
    agree_on_every_char(&rule, "title", LABEL_SHAPES, |v| Title::parse(v).is_ok());
}

#[test]
fn emails_are_documented_as_validated() {
    let rule = rule(&["NewUserBody", "UserChangesBody"], "email");
    assert_eq!(rule.max, Email::MAX);
    let shapes = ["_", "a_b@c", "a@b_c", "_a@b", "a@b_"];
    agree_on_every_char(&rule, "email", &shapes, |v| Email::parse(v).is_ok());
}

#[test]
fn content_is_documented_as_validated() {
    let rule = rule(&["NewPostBody", "PostChangesBody"], "content");
    assert_eq!((rule.min, rule.max), (0, Content::MAX));
    agree_on_every_char(&rule, "content", &["_"], |v| {
        Content::parse(v.to_owned()).is_ok()
    });
}

/// Lengths count characters, at the boundaries, trimmed or not. Where the document
/// is stricter than the server (a value padded past `maxLength` that fits once
/// trimmed) the server takes it: nothing the document allows is refused.
#[test]
fn lengths_at_the_boundaries() {
    let name = Rule::of("NewUserBody", "name");
    let title = Rule::of("NewPostBody", "title");
    let email = Rule::of("NewUserBody", "email");
    let content = Rule::of("NewPostBody", "content");
    let cases: [(&str, String, bool); 12] = [
        ("name", "😀".repeat(100), true),
        ("name", "😀".repeat(101), false),
        ("name", String::new(), false),
        ("name", " \u{a0}\u{3000} ".into(), false),
        ("name", "\t Ada \n".into(), true),
        ("title", "x".repeat(200), true),
        ("title", "x".repeat(201), false),
        ("email", format!("{}@b.c", "é".repeat(250)), true),
        ("email", format!("{}@b.c", "é".repeat(251)), false),
        ("email", format!("{}@b.c", "İ".repeat(250)), true),
        ("content", "é".repeat(100_000), true),
        ("content", "é".repeat(100_001), false),
    ];
    for (field, value, valid) in cases {
        let (rule, server) = match field {
            "name" => (&name, Name::parse(&value).is_ok()),
            "title" => (&title, Title::parse(&value).is_ok()),
            "email" => (&email, Email::parse(&value).is_ok()),
            _ => (&content, Content::parse(value.clone()).is_ok()),
        };
        let shown = value.chars().take(12).collect::<String>();
        assert_eq!(rule.allows(&value), valid, "document, {field} {shown:?}…");
        assert_eq!(server, valid, "server, {field} {shown:?}…");
    }
    let padded = format!("  {}  ", "x".repeat(100));
    assert!(!name.allows(&padded) && Name::parse(&padded).is_ok());
}

/// Only what the server needs is required: a `PATCH` body may leave out any field.
#[test]
fn required_fields_are_the_servers() {
    let required = |body: &str| schema(body)["required"].clone();
    assert_eq!(required("NewUserBody"), json!(["email", "name"]));
    assert_eq!(required("NewPostBody"), json!(["title", "content"]));
    for body in ["UserChangesBody", "PostChangesBody", "NewTokenBody"] {
        assert_eq!(required(body), Value::Null, "{body} requires fields");
    }
    let patch = &doc()["paths"]["/users/{id}"]["patch"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    assert_eq!(patch, "#/components/schemas/UserChangesBody");
    assert_eq!(
        schema("Role")["enum"],
        json!(["user", "admin"]),
        "role is user|admin"
    );
}

#[test]
fn every_limit_is_documented_as_1_to_100() {
    let doc = doc();
    let mut lists = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            for parameter in parameters.iter().filter(|p| p["name"] == "limit") {
                assert_eq!(parameter["in"], "query", "{method} {path}");
                let schema = &parameter["schema"];
                assert_eq!(schema["type"], "integer", "{method} {path}");
                assert_eq!(
                    (&schema["minimum"], &schema["maximum"]),
                    (&json!(1), &json!(domain::MAX_LIMIT)),
                    "{method} {path}"
                );
                lists.push(format!("{method} {path}"));
            }
        }
    }
    lists.sort();
    assert_eq!(
        lists,
        ["get /posts", "get /users", "get /users/{id}/tokens"],
        "the operations that page"
    );
}

/// Values at the edge of what the document allows, sent to the real app: each is
/// accepted, and stored as the contract says.
#[actix_web::test]
async fn the_app_accepts_what_the_document_allows() {
    let t = common::database(|c| c);
    let admin = common::member(&t.db, "admin@example.com", Some("admin"));
    let app = app!(t.db);
    let name = Rule::of("NewUserBody", "name");
    let email = Rule::of("NewUserBody", "email");
    let title = Rule::of("NewPostBody", "title");
    let content = Rule::of("NewPostBody", "content");

    let user = json!({
        "email": format!("\u{3000}{}@b.c ", "İ".repeat(248)),
        "name": format!("\t{}\u{a0}", "😀".repeat(98)),
    });
    assert!(email.allows(user["email"].as_str().unwrap()));
    assert!(name.allows(user["name"].as_str().unwrap()));
    let created = send!(
        app,
        TestRequest::post()
            .uri("/users")
            .insert_header(bearer(&admin.token))
            .set_json(&user)
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["name"], "😀".repeat(98));

    let post = json!({
        "title": format!("\u{feff}{}\u{200b}", "x".repeat(198)),
        "content": "\u{202e}\r\n\t".repeat(25_000),
    });
    assert!(title.allows(post["title"].as_str().unwrap()));
    assert!(content.allows(post["content"].as_str().unwrap()));
    let created = send!(
        app,
        TestRequest::post()
            .uri("/posts")
            .insert_header(bearer(&admin.token))
            .set_json(&post)
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["content"], post["content"]);
}
