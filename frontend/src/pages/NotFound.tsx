import { Link } from "react-router";

export function NotFound({ forbidden }: { forbidden?: boolean }) {
  return (
    <section className="page center-page">
      <h1>{forbidden ? "Not available" : "Page not found"}</h1>
      <p className="muted">
        {forbidden
          ? "This page is not available to your account."
          : "The page you asked for does not exist or has moved."}
      </p>
      <Link className="btn btn-primary" to="/">
        Go home
      </Link>
    </section>
  );
}
