//! Browser-like HTTP helpers: a client with cookies and no redirects, hidden form fields, login
//! through the form.

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("accept", "text/html".parse().unwrap());
            h
        })
        .build()
        .unwrap()
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub async fn get_text(c: &reqwest::Client, url: &str) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

/// Logs in through the form.
pub async fn login(srv: &super::TestServer, c: &reqwest::Client, user: &str, pw: &str) -> reqwest::Response {
    let csrf = hidden(&get_text(c, &srv.at("/login")).await, "csrf");
    c.post(srv.at("/login"))
        .form(&[("csrf", csrf.as_str()), ("username", user), ("password", pw)])
        .send()
        .await
        .unwrap()
}

pub async fn csrf_of(c: &reqwest::Client, url: &str) -> String {
    hidden(&get_text(c, url).await, "csrf")
}

/// A `multipart/form-data` body by hand (the test client needs nothing more): fields are
/// `(name, filename, bytes)`; a filename makes a file part. Returns the content type and body.
pub fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "agora-test-boundary-7d1e0c";
    let mut body = Vec::new();
    for (name, filename, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
