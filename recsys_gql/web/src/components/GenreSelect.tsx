/** A labelled genre picker whose empty choice means "no genre filter". */
export function GenreSelect(props: {
  label: string;
  anyLabel: string;
  genres: readonly string[];
  value: string;
  onChange: (genre: string) => void;
}) {
  return (
    <label>
      {props.label}{" "}
      <select value={props.value} onChange={(event) => props.onChange(event.currentTarget.value)}>
        <option value="">{props.anyLabel}</option>
        {props.genres.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
    </label>
  );
}
