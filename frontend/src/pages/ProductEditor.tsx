import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type DragEvent, type FormEvent, useEffect, useRef, useState } from "react";
import { useNavigate, useParams } from "react-router";
import { ApiError, client, unwrap, upload } from "../api/client";
import type { Product } from "../api/types";
import { useToast } from "../components/toast";
import { Button, ErrorState, Field, SelectField, Skeleton, TextArea } from "../components/ui";
import { humanize } from "../lib/format";
import { useCategories } from "../lib/queries";

interface AttrRow {
  key: string;
  value: string;
}

export function validateProduct(
  f: { name: string; description: string; price: string; inventory: string; category: string },
  creating: boolean,
) {
  const errs: Record<string, string> = {};
  if (!f.name.trim()) errs.name = "Product name is required";
  if (!f.description.trim()) errs.description = "Description is required";
  const price = Number(f.price);
  if (
    f.price === "" ||
    !Number.isFinite(price) ||
    price < 0 ||
    Math.round(price * 100) !== price * 100
  )
    errs.price = "Price must be a number ≥ 0 with at most two decimals";
  if (
    creating &&
    (!Number.isInteger(Number(f.inventory)) || Number(f.inventory) < 0 || f.inventory === "")
  )
    errs.inventory = "Stock must be a whole number ≥ 0";
  if (!f.category) errs.category = "Choose a category";
  return errs;
}

function attrValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

export default function ProductEditor() {
  const { id } = useParams();
  const creating = !id;
  const navigate = useNavigate();
  const notify = useToast();
  const qc = useQueryClient();
  const categories = useCategories();
  const existing = useQuery({
    queryKey: ["product", id],
    queryFn: async () =>
      (
        await unwrap<{ product: Product }>(
          client.GET("/api/products/{id}", { params: { path: { id: id ?? "" } } }),
        )
      ).product,
    enabled: !creating,
  });
  const [form, setForm] = useState({
    name: "",
    description: "",
    price: "",
    inventory: "0",
    category: "",
    sku: "",
    tags: "",
    links: "",
  });
  const [attrs, setAttrs] = useState<AttrRow[]>([]);
  const [files, setFiles] = useState<File[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState("");
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const p = existing.data;
    if (!p) return;
    setForm({
      name: p.name,
      description: p.description,
      price: String(p.price),
      inventory: String(p.inventory),
      category: p.category,
      sku: p.sku ?? "",
      tags: p.tags.join(", "),
      links: p.imageFiles
        .filter((i) => !i.uploaded)
        .map((i) => i.url)
        .join("\n"),
    });
    setAttrs(
      Object.entries(p.attributes ?? {}).map(([key, v]) => ({
        key,
        value: typeof v === "string" ? v : JSON.stringify(v),
      })),
    );
  }, [existing.data]);

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    setFiles((f) => [
      ...f,
      ...Array.from(e.dataTransfer.files).filter((x) => x.type.startsWith("image/")),
    ]);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setFormError("");
    const errs = validateProduct(form, creating);
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const body = {
      name: form.name.trim(),
      description: form.description.trim(),
      price: Number(form.price),
      category: form.category,
      sku: form.sku.trim() || null,
      tags: form.tags
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean),
      attributes: Object.fromEntries(
        attrs.filter((a) => a.key.trim()).map((a) => [a.key.trim(), attrValue(a.value)]),
      ),
      images: [
        ...(existing.data?.imageFiles.filter((i) => i.uploaded).map((i) => i.url) ?? []),
        ...form.links
          .split(/\s+/)
          .map((l) => l.trim())
          .filter(Boolean),
      ],
      ...(creating ? { inventory: Number(form.inventory) } : {}),
    };
    setBusy(true);
    try {
      const saved = creating
        ? await unwrap<{ product: Product }>(client.POST("/api/products", { body }))
        : await unwrap<{ product: Product }>(
            client.PUT("/api/products/{id}", { params: { path: { id: id ?? "" } }, body }),
          );
      if (files.length) {
        const fd = new FormData();
        for (const f of files) fd.append("images", f);
        await upload(`/api/products/${saved.product.id}/images`, fd);
      }
      qc.invalidateQueries({ queryKey: ["products"] });
      qc.invalidateQueries({ queryKey: ["product", saved.product.id] });
      notify(creating ? "Product created" : "Product saved");
      navigate(`/products/${saved.product.id}`);
    } catch (err) {
      if (err instanceof ApiError) {
        setErrors(Object.fromEntries(err.errors.map((f) => [f.path, f.msg])));
      }
      setFormError(err instanceof Error ? err.message : "Saving failed");
    } finally {
      setBusy(false);
    }
  };

  if (!creating && existing.isError)
    return <ErrorState error={existing.error} retry={() => existing.refetch()} />;
  if (!creating && !existing.data) return <Skeleton height={400} />;
  const upd = (k: keyof typeof form) => (e: { target: { value: string } }) =>
    setForm({ ...form, [k]: e.target.value });
  return (
    <section className="page narrow" aria-labelledby="editor-title">
      <h1 id="editor-title">{creating ? "New product" : `Edit ${existing.data?.name ?? ""}`}</h1>
      <form className="stack card" onSubmit={submit} noValidate>
        <Field label="Name" value={form.name} onChange={upd("name")} error={errors.name} required />
        <TextArea
          label="Description"
          rows={4}
          value={form.description}
          onChange={upd("description")}
          error={errors.description}
          required
        />
        <div className="row wrap">
          <Field
            label="Price (₹)"
            type="number"
            min={0}
            step="0.01"
            inputMode="decimal"
            value={form.price}
            onChange={upd("price")}
            error={errors.price}
            required
          />
          {creating ? (
            <Field
              label="Stock"
              type="number"
              min={0}
              step={1}
              value={form.inventory}
              onChange={upd("inventory")}
              error={errors.inventory}
              required
            />
          ) : null}
          <SelectField
            label="Category"
            value={form.category}
            onChange={upd("category")}
            error={errors.category}
            required
          >
            <option value="">Choose…</option>
            {categories.data?.categories.map((c) => (
              <option key={c} value={c}>
                {humanize(c)}
              </option>
            ))}
          </SelectField>
          <Field label="SKU (optional)" value={form.sku} onChange={upd("sku")} error={errors.sku} />
        </div>
        <Field label="Tags (comma-separated)" value={form.tags} onChange={upd("tags")} />
        <fieldset className="stack">
          <legend>Attributes</legend>
          {attrs.map((a, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are edited in place
            <div className="row" key={i}>
              <Field
                label="Name"
                value={a.key}
                onChange={(e) =>
                  setAttrs(attrs.map((x, j) => (j === i ? { ...x, key: e.target.value } : x)))
                }
              />
              <Field
                label="Value"
                value={a.value}
                onChange={(e) =>
                  setAttrs(attrs.map((x, j) => (j === i ? { ...x, value: e.target.value } : x)))
                }
              />
              <Button
                variant="ghost"
                onClick={() => setAttrs(attrs.filter((_, j) => j !== i))}
                aria-label={`Remove attribute ${a.key || i + 1}`}
              >
                Remove
              </Button>
            </div>
          ))}
          <Button onClick={() => setAttrs([...attrs, { key: "", value: "" }])}>
            Add attribute
          </Button>
        </fieldset>
        <fieldset className="stack">
          <legend>Images</legend>
          {existing.data?.imageFiles.filter((i) => i.uploaded).length ? (
            <div className="thumbs">
              {existing.data.imageFiles
                .filter((i) => i.uploaded)
                .map((i) => (
                  <img key={i.id} src={i.url} alt="" width={64} height={64} />
                ))}
            </div>
          ) : null}
          {/* biome-ignore lint/a11y/noStaticElementInteractions: a drop target; keyboard users use "Choose files" */}
          <div
            className={`dropzone ${dragging ? "dragging" : ""}`}
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
          >
            <p>Drop images here (JPEG, PNG or WebP), or</p>
            <Button onClick={() => fileInput.current?.click()}>Choose files</Button>
            <input
              ref={fileInput}
              type="file"
              accept="image/jpeg,image/png,image/webp"
              multiple
              hidden
              aria-label="Image files"
              data-testid="image-input"
              onChange={(e) => setFiles((f) => [...f, ...Array.from(e.target.files ?? [])])}
            />
            {files.length ? (
              <ul className="file-list">
                {files.map((f, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: two files may share a name
                  <li key={`${f.name}-${i}`}>
                    {f.name}{" "}
                    <button
                      type="button"
                      className="link-btn"
                      onClick={() => setFiles(files.filter((_, j) => j !== i))}
                    >
                      remove
                    </button>
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
          <TextArea
            label="Image links (one per line, https://…)"
            rows={2}
            value={form.links}
            onChange={upd("links")}
            error={errors.images}
          />
        </fieldset>
        {formError ? (
          <p className="form-error" role="alert">
            {formError}
          </p>
        ) : null}
        <div className="row">
          <Button type="submit" variant="primary" busy={busy}>
            {creating ? "Create product" : "Save"}
          </Button>
          <Button onClick={() => navigate(-1)}>Cancel</Button>
        </div>
      </form>
    </section>
  );
}
